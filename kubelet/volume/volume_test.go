package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type objects struct {
	cms     map[string]*corev1.ConfigMap
	secrets map[string]*corev1.Secret
}

// errNotFound is what the API's client returns for a missing object.
var errNotFound = status.Error(codes.NotFound, `configmap "nope" not found`)

func (o *objects) inputs() Inputs {
	return Inputs{
		ConfigMap: func(_ context.Context, _, name string) (*corev1.ConfigMap, error) {
			if cm, ok := o.cms[name]; ok {
				return cm, nil
			}
			return nil, errNotFound
		},
		Secret: func(_ context.Context, _, name string) (*corev1.Secret, error) {
			if s, ok := o.secrets[name]; ok {
				return s, nil
			}
			return nil, errNotFound
		},
		Downward: func(it *corev1.DownwardAPIVolumeFile) (string, error) {
			return "value-of-" + it.FieldRef.FieldPath, nil
		},
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testPod(vols ...corev1.Volume) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"}, Spec: corev1.PodSpec{Volumes: vols}}
}

// A configMap volume is written as Kubernetes' atomic writer writes it, and rewritten in
// place when the ConfigMap changes: user paths are links through ..data, which moves
// to a new directory at once; a key that went is gone.
func TestConfigMapVolumeAtomicUpdate(t *testing.T) {
	m, _ := New(Config{Root: t.TempDir()})
	objs := &objects{cms: map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"a": "1", "b": "2"}}}}
	pod := testPod(corev1.Volume{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}})
	paths, err := m.SetUp(context.Background(), pod, objs.inputs())
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["conf"]
	if !strings.HasSuffix(dir, "pods/uid-1/volumes/kubernetes.io~configmap/conf") {
		t.Fatalf("volume at %s", dir)
	}
	// A container's user other than root lists and reads it (e2e's "as non-root" tests).
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm()&0o005 != 0o005 {
		t.Fatalf("volume directory mode %v (%v), want readable and searchable by all", fi.Mode(), err)
	}
	if got := read(t, filepath.Join(dir, "a")); got != "1" {
		t.Fatalf("a = %q", got)
	}
	if target, err := os.Readlink(filepath.Join(dir, "a")); err != nil || target != "..data/a" {
		t.Fatalf("a links to %q (%v)", target, err)
	}
	first, _ := os.Readlink(filepath.Join(dir, "..data"))

	// Unchanged: nothing is rewritten.
	if _, err := m.SetUp(context.Background(), pod, objs.inputs()); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, "..data")); again != first {
		t.Fatalf("unchanged content rewritten: %s -> %s", first, again)
	}

	objs.cms["cfg"] = &corev1.ConfigMap{Data: map[string]string{"a": "10", "c": "3"}}
	if _, err := m.SetUp(context.Background(), pod, objs.inputs()); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "a")); got != "10" {
		t.Errorf("a = %q after the update", got)
	}
	if got := read(t, filepath.Join(dir, "c")); got != "3" {
		t.Errorf("c = %q after the update", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "b")); !os.IsNotExist(err) {
		t.Errorf("b still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Errorf("the old content %s still there: %v", first, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 4 { // ..data, one timestamped directory, a, c
		t.Errorf("volume holds %d entries", len(ents))
	}
}

// A Manager remembers what it wrote: a sync whose content did not change touches no
// file (each pod's service-account token volume is synced many times; reading it back
// each time was most of what a pod's volumes cost a node). A new Manager (a restarted
// kubelet) compares with the files instead, and TearDown forgets the pod's volumes.
func TestUnchangedVolumeTouchesNoFile(t *testing.T) {
	root := t.TempDir()
	m, _ := New(Config{Root: root})
	objs := &objects{cms: map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"a": "1"}}}}
	pod := testPod(corev1.Volume{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}})
	paths, err := m.SetUp(context.Background(), pod, objs.inputs())
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["conf"]
	first, _ := os.Readlink(filepath.Join(dir, "..data"))

	// A restarted kubelet finds the same content on disk: not rewritten.
	m2, _ := New(Config{Root: root})
	if _, err := m2.SetUp(context.Background(), pod, objs.inputs()); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, "..data")); again != first {
		t.Fatalf("a new Manager rewrote unchanged content: %s -> %s", first, again)
	}

	// The volume moved away behind the Manager's back: an unchanged sync does not look.
	aside := filepath.Join(root, "aside")
	if err := os.Rename(dir, aside); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetUp(context.Background(), pod, objs.inputs()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("an unchanged sync touched the volume's directory: %v", err)
	}
	// Changed content is written.
	objs.cms["cfg"] = &corev1.ConfigMap{Data: map[string]string{"a": "2"}}
	if _, err := m.SetUp(context.Background(), pod, objs.inputs()); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "a")); got != "2" {
		t.Fatalf("a = %q after the change", got)
	}
	// TearDown forgets: the pod's volume set up again is written again.
	if err := m.TearDown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetUp(context.Background(), pod, objs.inputs()); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "a")); got != "2" {
		t.Fatalf("a = %q after TearDown and SetUp", got)
	}
}

// A claim's volume is the path of the volume it is bound to: a hostPath one made per its
// type, a local one that must exist; other kinds are refused, and a simulated node
// neither makes nor checks the path.
func TestClaimVolumes(t *testing.T) {
	dir := t.TempDir()
	pvs := map[string]*corev1.PersistentVolume{
		"host":    {ObjectMeta: metav1.ObjectMeta{Name: "pv-host"}, Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir + "/made", Type: new(corev1.HostPathDirectoryOrCreate)}}}},
		"local":   {ObjectMeta: metav1.ObjectMeta{Name: "pv-local"}, Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}}}},
		"nolocal": {ObjectMeta: metav1.ObjectMeta{Name: "pv-nolocal"}, Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir + "/absent"}}}},
		"nfs":     {ObjectMeta: metav1.ObjectMeta{Name: "pv-nfs"}, Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/"}}}},
	}
	in := (&objects{}).inputs()
	in.Claim = func(_ context.Context, ns, name string) (*corev1.PersistentVolume, error) {
		if pv, ok := pvs[name]; ok && ns == "ns" {
			return pv, nil
		}
		return nil, fmt.Errorf("PVC %s/%s has non-bound phase: %w", ns, name, ErrClaimPending)
	}
	claim := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}
	}
	pod := testPod(claim("host"), claim("local"), claim("nolocal"), claim("nfs"), claim("unbound"))
	m, _ := New(Config{Root: t.TempDir()})
	paths, err := m.SetUp(context.Background(), pod, in)
	if paths["host"] != dir+"/made" || paths["local"] != dir {
		t.Errorf("paths %v", paths)
	}
	if fi, err := os.Stat(dir + "/made"); err != nil || !fi.IsDir() {
		t.Errorf("the DirectoryOrCreate hostPath volume was not made: %v", err)
	}
	want := []string{
		`MountVolume.SetUp failed for volume "nolocal" : local volume "pv-nolocal": stat ` + dir + `/absent: no such file or directory`,
		`MountVolume.SetUp failed for volume "nfs" : persistentvolume "pv-nfs": only hostPath and local volumes are supported by Skiff`,
		`MountVolume.SetUp failed for volume "unbound" : PVC ns/unbound has non-bound phase: the claim is not bound to a volume`,
	}
	if got := strings.Split(fmt.Sprint(err), "\n"); !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !errors.Is(err, ErrClaimPending) {
		t.Errorf("the unbound claim's error is not ErrClaimPending")
	}

	// A simulated node: the paths are the volumes', untouched.
	sim, _ := New(Config{Root: t.TempDir(), Simulated: true})
	pvs["host"].Spec.HostPath.Path = dir + "/not-made"
	paths, _ = sim.SetUp(context.Background(), testPod(claim("host"), claim("nolocal")), in)
	if paths["host"] != dir+"/not-made" || paths["nolocal"] != dir+"/absent" {
		t.Errorf("simulated paths %v", paths)
	}
	if _, err := os.Stat(dir + "/not-made"); err == nil {
		t.Errorf("a simulated node made its claim's hostPath")
	}
}

func TestVolumeErrors(t *testing.T) {
	m, _ := New(Config{Root: t.TempDir()})
	objs := &objects{cms: map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"a": "1"}}}}
	pod := testPod(
		corev1.Volume{Name: "missing", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}},
		corev1.Volume{Name: "optional", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: new(true)}}},
		corev1.Volume{Name: "key", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Items: []corev1.KeyToPath{{Key: "zz", Path: "z"}}}}},
		corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: "/proc/version", Type: new(corev1.HostPathDirectory)}}},
		corev1.Volume{Name: "claim", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
	)
	in := objs.inputs()
	paths, err := m.SetUp(context.Background(), pod, in)
	var got []string
	for _, e := range strings.Split(err.Error(), "\n") {
		got = append(got, e)
	}
	want := []string{
		`MountVolume.SetUp failed for volume "missing" : configmap "nope" not found`,
		`MountVolume.SetUp failed for volume "key" : configmap references non-existent config key: zz`,
		`MountVolume.SetUp failed for volume "host" : hostPath type check failed: /proc/version is not a directory`,
		`MountVolume.SetUp failed for volume "claim" : persistentvolumeclaim "data": the claim is not bound to a volume`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !errors.Is(err, ErrClaimPending) {
		t.Errorf("the claim's error is not ErrClaimPending")
	}
	if _, ok := paths["optional"]; !ok {
		t.Errorf("an optional volume whose ConfigMap is missing is not set up (empty)")
	}
}

func TestHostPathTypes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		path string
		typ  corev1.HostPathType
		ok   bool
	}{
		{filepath.Join(dir, "new-dir"), corev1.HostPathDirectoryOrCreate, true},
		{filepath.Join(dir, "new-dir"), corev1.HostPathDirectory, true},
		{filepath.Join(dir, "new-file"), corev1.HostPathFileOrCreate, true},
		{filepath.Join(dir, "new-file"), corev1.HostPathFile, true},
		{filepath.Join(dir, "new-file"), corev1.HostPathDirectory, false},
		{filepath.Join(dir, "absent"), corev1.HostPathFile, false},
		{filepath.Join(dir, "absent"), corev1.HostPathUnset, true},
		{"/dev/null", corev1.HostPathCharDev, true},
		{"/dev/null", corev1.HostPathSocket, false},
	} {
		err := checkHostPath(&corev1.HostPathVolumeSource{Path: tc.path, Type: &tc.typ})
		if (err == nil) != tc.ok {
			t.Errorf("%s as %q: %v", tc.path, tc.typ, err)
		}
	}
}

// The size of a memory emptyDir's tmpfs, as Kubernetes' calculateEmptyDirMemorySize.
func TestMemoryVolumeSize(t *testing.T) {
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	for _, tc := range []struct {
		limit     *resource.Quantity
		podMemory int64
		want      int64
	}{
		{nil, 0, 0},
		{nil, 64 << 20, 64 << 20},
		{q("16Mi"), 0, 16 << 20},
		{q("16Mi"), 64 << 20, 16 << 20},
		{q("128Mi"), 64 << 20, 64 << 20},
		{q("64Mi"), 64 << 20, 64 << 20},
		{q("0"), 64 << 20, 64 << 20},
	} {
		if got := memoryVolumeSize(tc.limit, tc.podMemory); got != tc.want {
			t.Errorf("sizeLimit %v, pod memory %d: %d, want %d", tc.limit, tc.podMemory, got, tc.want)
		}
	}
}

// ExceededEmptyDir finds an emptyDir holding more than its sizeLimit, counting blocks as
// du does; volumes without a limit, or under it, and hard links counted once, are not.
func TestExceededEmptyDir(t *testing.T) {
	m, _ := New(Config{Root: t.TempDir()})
	limit := resource.MustParse("1Mi")
	pod := testPod(
		corev1.Volume{Name: "free", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &limit}}},
	)
	if name, _, err := m.ExceededEmptyDir(pod); err != nil || name != "" {
		t.Fatalf("before SetUp: %q, %v", name, err)
	}
	paths, err := m.SetUp(context.Background(), pod, (&objects{}).inputs())
	if err != nil {
		t.Fatal(err)
	}
	fill := func(p string, n int) {
		t.Helper()
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil { // zeros written are allocated
			t.Fatal(err)
		}
	}
	fill(filepath.Join(paths["free"], "big"), 4<<20)
	fill(filepath.Join(paths["cache"], "half"), 512<<10)
	if err := os.Link(filepath.Join(paths["cache"], "half"), filepath.Join(paths["cache"], "again")); err != nil {
		t.Fatal(err)
	}
	if name, _, err := m.ExceededEmptyDir(pod); err != nil || name != "" {
		t.Fatalf("under the limit (512Ki, linked twice; 4Mi in an unlimited volume): %q, %v", name, err)
	}
	if err := os.MkdirAll(filepath.Join(paths["cache"], "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	fill(filepath.Join(paths["cache"], "sub", "more"), 768<<10)
	name, got, err := m.ExceededEmptyDir(pod)
	if err != nil || name != "cache" || got.String() != "1Mi" {
		t.Fatalf("over the limit: %q %v, %v; want cache 1Mi", name, got.String(), err)
	}
}

// As root: secret, projected and Memory emptyDir volumes are tmpfs mounts (sized by
// sizeLimit), and TearDown unmounts and removes everything.
func TestTmpfsAndTearDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting tmpfs needs root")
	}
	m, _ := New(Config{Root: t.TempDir(), Tmpfs: true})
	objs := &objects{secrets: map[string]*corev1.Secret{"s": {Data: map[string][]byte{"password": []byte("hunter2")}}},
		cms: map[string]*corev1.ConfigMap{"c": {Data: map[string]string{"k": "v"}}}}
	limit := resource.MustParse("16Mi")
	pod := testPod(
		corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: new(int32(0o400))}}},
		corev1.Volume{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &limit}}},
		corev1.Volume{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
		}}}},
		corev1.Volume{Name: "disk", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	)
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: new(int64(2000))}
	paths, err := m.SetUp(context.Background(), pod, objs.inputs())
	if err != nil {
		t.Fatal(err)
	}
	isTmpfs := func(p string) bool {
		var st unix.Statfs_t
		return unix.Statfs(p, &st) == nil && st.Type == tmpfsMagic
	}
	for _, v := range []string{"sec", "mem", "proj"} {
		if !isTmpfs(paths[v]) {
			t.Errorf("volume %s is not a tmpfs", v)
		}
	}
	if isTmpfs(paths["disk"]) {
		t.Errorf("a disk emptyDir is a tmpfs")
	}
	var st unix.Statfs_t
	unix.Statfs(paths["mem"], &st)
	if size := int64(st.Blocks) * st.Bsize; size != 16<<20 {
		t.Errorf("memory emptyDir holds %d bytes, want 16Mi", size)
	}
	// Without a smaller sizeLimit, a memory emptyDir is as big as the pod's memory.
	small := testPod(corev1.Volume{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		corev1.Volume{Name: "big", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &limit}}})
	small.UID = "uid-small"
	in := objs.inputs()
	in.PodMemory = 8 << 20
	smallPaths, err := m.SetUp(context.Background(), small, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"mem", "big"} {
		unix.Statfs(smallPaths[v], &st)
		if size := int64(st.Blocks) * st.Bsize; size != 8<<20 {
			t.Errorf("memory emptyDir %s of a pod with 8Mi of memory holds %d bytes, want 8Mi", v, size)
		}
	}
	if err := m.TearDown(small.UID); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(paths["sec"], "password")); got != "hunter2" {
		t.Errorf("secret file %q", got)
	}
	if fi, err := os.Stat(filepath.Join(paths["sec"], "password")); err != nil || fi.Mode().Perm() != 0o440 {
		t.Errorf("secret file mode %v (%v), want 0440 (0400, and the fsGroup reads)", fi.Mode(), err)
	}
	if got := read(t, filepath.Join(paths["proj"], "name")); got != "value-of-metadata.name" {
		t.Errorf("projected downward API file %q", got)
	}
	if fi, err := os.Stat(paths["disk"]); err != nil || fi.Mode()&os.ModeSetgid == 0 {
		t.Errorf("emptyDir with fsGroup: mode %v (%v), want setgid", fi.Mode(), err)
	}
	// Setting up again mounts nothing twice.
	if _, err := m.SetUp(context.Background(), pod, objs.inputs()); err != nil {
		t.Fatal(err)
	}
	if mounts, _ := mountsUnder(m.PodDir(pod.UID)); len(mounts) != 3 {
		t.Errorf("mounts after a second SetUp: %v", mounts)
	}
	uids, _ := m.Pods()
	if len(uids) != 1 || uids[0] != pod.UID {
		t.Errorf("pods %v", uids)
	}
	if err := m.TearDown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if mounts, _ := mountsUnder(m.PodDir(pod.UID)); len(mounts) != 0 {
		t.Errorf("still mounted after TearDown: %v", mounts)
	}
	if _, err := os.Stat(m.PodDir(pod.UID)); !os.IsNotExist(err) {
		t.Errorf("pod directory still there: %v", err)
	}
}

// writeFile gives a file its data and its mode exactly, whatever the umask, and with
// fsGroup the group, which reads it; an existing file is replaced.
func TestWriteFile(t *testing.T) {
	old := unix.Umask(0o077) // the worst a kubelet could start with
	defer unix.Umask(old)
	gid := int64(os.Getgid())
	big := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		name    string
		mode    os.FileMode
		fsGroup *int64
		data    string
		want    os.FileMode
	}{
		{"default mode", 0o644, nil, "default", 0o644},
		{"owner only", 0o600, nil, "s3cret", 0o600},
		{"fsGroup reads", 0o400, &gid, "token", 0o440},
		{"empty", 0o644, nil, "", 0o644},
		{"large", 0o644, nil, big, 0o644},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(p, []byte("old content, longer than the new"), 0o666); err != nil {
				t.Fatal(err)
			}
			if err := writeFile(p, file{data: []byte(tc.data), mode: tc.mode}, tc.fsGroup); err != nil {
				t.Fatal(err)
			}
			if got := read(t, p); got != tc.data {
				t.Errorf("content %d bytes, want %d", len(got), len(tc.data))
			}
			fi, err := os.Stat(p)
			if err != nil || fi.Mode().Perm() != tc.want {
				t.Errorf("mode %v (%v), want %v", fi.Mode().Perm(), err, tc.want)
			}
		})
	}
	if err := writeFile(filepath.Join(t.TempDir(), "no", "such", "dir"), file{mode: 0o644}, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file in a missing directory: %v, want not exist", err)
	}
}

// A volume's first write makes Kubernetes' layout at once (..data linking to the
// timestamped content, no ..data_tmp left), the same as a rewrite leaves it, with the
// files' modes exact under any umask.
func TestFreshVolumeLayout(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	m, _ := New(Config{Root: t.TempDir()})
	mode := int32(0o600)
	objs := &objects{cms: map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"a": "1", "b": "2"}}}}
	pod := testPod(corev1.Volume{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: &mode,
		Items: []corev1.KeyToPath{{Key: "a", Path: "a"}, {Key: "b", Path: "sub/b"}}}}})
	layout := func(dir string) []string {
		t.Helper()
		var out []string
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, "..20") {
				name = "..TIMESTAMP"
			}
			if e.Type()&os.ModeSymlink != 0 {
				target, _ := os.Readlink(filepath.Join(dir, e.Name()))
				if strings.HasPrefix(target, "..20") {
					target = "..TIMESTAMP"
				}
				name += " -> " + target
			}
			out = append(out, name)
		}
		slices.Sort(out)
		return out
	}
	paths, err := m.SetUp(context.Background(), pod, objs.inputs())
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["conf"]
	want := []string{"..TIMESTAMP", "..data -> ..TIMESTAMP", "a -> ..data/a", "sub -> ..data/sub"}
	if got := layout(dir); !slices.Equal(got, want) {
		t.Errorf("first write: %q, want %q", got, want)
	}
	if got := read(t, filepath.Join(dir, "sub", "b")); got != "2" {
		t.Errorf("sub/b = %q", got)
	}
	for _, f := range []string{"a", "sub/b"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", f, fi.Mode().Perm(), err)
		}
	}
	objs.cms["cfg"] = &corev1.ConfigMap{Data: map[string]string{"a": "10", "b": "20"}}
	if _, err := m.SetUp(context.Background(), pod, objs.inputs()); err != nil {
		t.Fatal(err)
	}
	if got := layout(dir); !slices.Equal(got, want) {
		t.Errorf("rewrite: %q, want %q", got, want)
	}
	if got := read(t, filepath.Join(dir, "a")); got != "10" {
		t.Errorf("a = %q after the rewrite", got)
	}
}

// A simulated node's volumes (SkipContent) are resolved as a real node's — each
// ConfigMap read, each token requested, a missing source failing the same way — and
// their paths returned, but nothing is written under the root.
func TestSkipContentResolvesWritesNothing(t *testing.T) {
	root := t.TempDir()
	m, _ := New(Config{Root: root, Simulated: true, SkipContent: true})
	objs := &objects{cms: map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"a": "1"}}},
		secrets: map[string]*corev1.Secret{"s": {Data: map[string][]byte{"k": []byte("v")}}}}
	in := objs.inputs()
	var asked []string
	in.ConfigMap = func(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
		asked = append(asked, "configmap/"+name)
		return objs.inputs().ConfigMap(ctx, ns, name)
	}
	in.ServiceAccountToken = func(_ context.Context, p *corev1.ServiceAccountTokenProjection) (string, error) {
		asked = append(asked, "token/"+p.Path)
		return "tok", nil
	}
	pod := testPod(
		corev1.Volume{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
		corev1.Volume{Name: "api", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
		}}}},
		corev1.Volume{Name: "missing", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}},
	)
	paths, err := m.SetUp(context.Background(), pod, in)
	if want := `MountVolume.SetUp failed for volume "missing" : configmap "nope" not found`; fmt.Sprint(err) != want {
		t.Errorf("error %v, want %s", err, want)
	}
	if want := []string{"configmap/cfg", "token/token", "configmap/cfg", "configmap/nope"}; !slices.Equal(asked, want) {
		t.Errorf("sources asked for %v, want %v", asked, want)
	}
	if want := filepath.Join(root, "pods", "uid-1", "volumes", "kubernetes.io~projected", "api"); paths["api"] != want {
		t.Errorf("projected volume's path %q, want %q", paths["api"], want)
	}
	if len(paths) != 3 {
		t.Errorf("paths %v: want conf, sec and api", paths)
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 0 {
		t.Errorf("a simulated node wrote under its root: %v %v", entries, err)
	}

	// The same pod on a real node's Manager writes them: the difference is SkipContent.
	real, _ := New(Config{Root: root})
	if _, err := real.SetUp(context.Background(), pod, in); err == nil {
		t.Fatal("the missing ConfigMap was not an error")
	}
	if got := read(t, filepath.Join(paths["api"], "token")); got != "tok" {
		t.Errorf("token file %q", got)
	}
}
