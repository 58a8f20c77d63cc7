// The page of skiffctl ui: the cluster view (#/), the chain map of a workload
// (#/Deployment/NAMESPACE/NAME, and DaemonSet, StatefulSet, Job, CronJob) and a Service's
// endpoints and pods (#/Service/NAMESPACE/NAME). Both are drawn from the views the server streams as
// server-sent events (/api/stream); the page never asks the API servers anything itself.
import { h, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts.length === 3) return { kind: parts[0], namespace: parts[1], name: parts[2] };
  return null;
}

// useStream follows /api/stream for the workload w (null: the cluster only).
function useStream(w) {
  const [state, setState] = useState({ cluster: null, chain: null, service: null, raft: null, connected: false });
  const key = w ? `${w.kind}/${w.namespace}/${w.name}` : '';
  useEffect(() => {
    const q = w ? `?kind=${encodeURIComponent(w.kind)}&namespace=${encodeURIComponent(w.namespace)}&name=${encodeURIComponent(w.name)}` : '';
    const es = new EventSource('api/stream' + q);
    setState({ cluster: null, chain: null, service: null, raft: null, connected: false });
    es.onopen = () => setState((s) => ({ ...s, connected: true }));
    es.onerror = () => setState((s) => ({ ...s, connected: false }));
    es.addEventListener('cluster', (e) => setState((s) => ({ ...s, cluster: JSON.parse(e.data) })));
    es.addEventListener('chain', (e) => setState((s) => ({ ...s, chain: JSON.parse(e.data) })));
    // The workload's own change, sent at once: its head, ahead of the pods' aggregation.
    es.addEventListener('head', (e) =>
      setState((s) => (s.chain && s.chain.found ? { ...s, chain: { ...s.chain, ...JSON.parse(e.data) } } : s))
    );
    es.addEventListener('raft', (e) => setState((s) => ({ ...s, raft: JSON.parse(e.data) })));
    es.addEventListener('service', (e) => setState((s) => ({ ...s, service: JSON.parse(e.data) })));
    return () => es.close();
  }, [key]);
  return state;
}

const ms = (v) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`);
const pct = (a, b) => (b > 0 ? Math.min(100, Math.round((100 * a) / b)) : 0);
const mib = (b) => `${Math.round(b / (1 << 20))}Mi`;
const states = (m) =>
  Object.entries(m || {})
    .sort()
    .map(([k, v]) => html`<span class="state st-${k}" key=${k}>${k} ${v}</span>`);

// VirtualList draws only the rows in view: a thousand nodes stay a few dozen elements.
function VirtualList({ items, rowHeight, height, row, id }) {
  const [top, setTop] = useState(0);
  const first = Math.max(0, Math.floor(top / rowHeight) - 5);
  const last = Math.min(items.length, Math.ceil((top + height) / rowHeight) + 5);
  return html`<div class="vlist" id=${id} style=${`height:${Math.min(height, items.length * rowHeight + 2)}px`}
      onScroll=${(e) => setTop(e.currentTarget.scrollTop)}>
    <div style=${`height:${items.length * rowHeight}px;position:relative`}>
      ${items.slice(first, last).map(
        (it, i) => html`<div class="vrow" key=${first + i} style=${`top:${(first + i) * rowHeight}px;height:${rowHeight}px`}>${row(it)}</div>`
      )}
    </div>
  </div>`;
}

function Raft({ raft }) {
  if (!raft) return null;
  return html`<section id="raft">
    <h2>API servers <small>leader <b id="leader">${raft.leader || 'none'}</b> · term <b id="term">${raft.term}</b> · revision ${raft.revision}</small></h2>
    ${raft.error && html`<p class="error">${raft.error}</p>`}
    <div class="members">
      ${(raft.members || []).map(
        (m) => html`<div key=${m.name} class=${`member ${m.leader ? 'leader' : ''} ${m.health}`} data-name=${m.name}
            data-role=${m.leader ? 'leader' : m.state ? m.state.toLowerCase() : 'down'} data-health=${m.health}>
          <b>${m.name}</b> <span class="role">${m.leader ? 'leader' : m.state ? m.state.toLowerCase() : 'down'}</span>
          <div class="sub">${m.health}${m.health === 'healthy' ? ` · commit ${m.commitIndex}` : ''}</div>
          <div class="sub">${m.api} · ${m.suffrage}</div>
        </div>`
      )}
    </div>
  </section>`;
}

function Nodes({ nodes }) {
  return html`<section id="nodes">
    <h2>Nodes <small>${nodes.length}</small></h2>
    <div class="row head"><span>node</span><span>cpu</span><span>memory</span><span>pods</span><span>states</span></div>
    <${VirtualList} id="node-list" items=${nodes} rowHeight=${28} height=${300}
      row=${(n) => html`<div class=${`row node ${n.ready ? 'ready' : 'notready'}`} data-name=${n.name}>
        <span>${n.name}${n.ready ? '' : ' (NotReady)'}${n.unschedulable ? ' (cordoned)' : ''}</span>
        <span><i class="bar" style=${`width:${pct(n.cpuRequestedMilli, n.cpuAllocatableMilli)}%`}></i>${n.cpuRequestedMilli}m/${n.cpuAllocatableMilli}m</span>
        <span><i class="bar" style=${`width:${pct(n.memoryRequestedBytes, n.memoryAllocatableBytes)}%`}></i>${mib(n.memoryRequestedBytes)}/${mib(n.memoryAllocatableBytes)}</span>
        <span>${n.pods}/${n.maxPods}</span><span>${states(n.states)}</span>
      </div>`} />
  </section>`;
}

// The kinds that open in the chain map (those skiffctl trace traces), and Services.
const chainable = { Deployment: true, DaemonSet: true, StatefulSet: true, Job: true, CronJob: true, Service: true };
const link = (kind, namespace, name, text) =>
  chainable[kind] ? html`<a href=${`#/${kind}/${namespace}/${name}`}>${text}</a>` : text;

function Workloads({ workloads }) {
  return html`<section id="workloads">
    <h2>Workloads <small>${workloads.length}</small></h2>
    ${workloads.map(
      (w) => html`<div key=${w.kind + w.namespace + w.name} class=${`row workload ${w.state}`} data-name=${`${w.kind}/${w.namespace}/${w.name}`}>
        <span>${link(w.kind, w.namespace, w.name, `${w.kind.toLowerCase()}/${w.name}`)}</span>
        <span>${w.namespace}</span><span>${w.ready}/${w.desired} ready · ${w.updated} updated · ${w.available} available</span>
        <span class="wstate">${w.state}</span><span class="sub">${w.message || ''}</span>
      </div>`
    )}
  </section>`;
}

function Events({ events, filter: initial }) {
  const [filter, setFilter] = useState(initial || '');
  const shown = events.filter((e) => !filter || e.object.includes(filter) || e.reason.includes(filter));
  return html`<section id="events">
    <h2>Events <input placeholder="filter by object or reason" value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} /></h2>
    <${VirtualList} id="event-list" items=${shown} rowHeight=${24} height=${320}
      row=${(e) => html`<div class=${`row event ${e.type}`}>
        <span>${new Date(e.time).toLocaleTimeString()}</span><span>${e.type}</span><span>${e.reason}</span>
        <span>${e.object}</span><span class="msg">${e.message}</span><span class="sub">${e.source}</span>
      </div>`} />
  </section>`;
}

const endpoints = (c) => html`<span class="state st-Ready">ready ${c.ready}</span><span class="state">serving ${c.serving}</span><span
    class="state st-Terminating">terminating ${c.terminating}</span>`;

function Services({ services }) {
  if (!services || services.length === 0) return null;
  return html`<section id="services">
    <h2>Services <small>${services.length}</small></h2>
    ${services.map(
      (s) => html`<div key=${s.namespace + '/' + s.name} class="row service" data-name=${`${s.namespace}/${s.name}`}>
        <span>${link('Service', s.namespace, s.name, `service/${s.name}`)}</span><span>${s.namespace}</span><span>${s.type} ${s.clusterIP}</span>
        <span>${s.ready}/${s.total} endpoints ready</span><span>${endpoints(s)}</span>
      </div>`
    )}
  </section>`;
}

function ClusterView({ cluster }) {
  if (!cluster) return html`<p>Waiting for the cluster…</p>`;
  return html`<div id="cluster">
    <${Raft} raft=${cluster.raft} />
    <${Workloads} workloads=${cluster.workloads} />
    <${Services} services=${cluster.services} />
    <${Nodes} nodes=${cluster.nodes} />
    <${Events} events=${cluster.events} />
  </div>`;
}

// rollout is a workload's rollout state, as the chain's head says it.
const rollout = (w, desired) =>
  `${w.state}: ${w.updated} updated · ${w.ready} ready · ${w.available} available of ${desired}${w.message ? ` · ${w.message}` : ''}`;

// ChainMap: the components as lanes (columns), the ten steps as rows, each drawn in the
// lane of the component that did it, with an arrow from the previous step's lane.
function ChainMap({ chain, raft }) {
  if (!chain) return html`<p>Waiting for the chain…</p>`;
  if (!chain.found) return html`<div id="chain" data-found="false"><p class="error">${chain.summary}</p></div>`;
  const lanes = chain.lanes.map((l) => l.component);
  const col = (lane) => lanes.indexOf(lane) + 1;
  let prev = col('user');
  return html`<div id="chain" data-rv=${chain.resourceVersion} data-summary=${chain.summary} data-found="true">
    <h2>${chain.kind.toLowerCase()}/${chain.name} <small>${chain.namespace}${chain.revision ? ` · revision ${chain.revision}` : ''}${chain.child ? ` · ${chain.child}` : ''}</small>
      <span class="summary" id="summary">${chain.summary}</span></h2>
    ${chain.workload && html`<p class="sub" id="rollout" data-state=${chain.workload.state}>${rollout(chain.workload, chain.desired)}</p>`}
    ${raft && html`<p class="sub" id="chain-raft">API servers: leader ${raft.leader || 'none'}, term ${raft.term} ·
      ${(raft.members || []).map((m) => html`<span key=${m.name} class=${`chip ${m.health}`}>${m.name}${m.leader ? ' ★' : ''}</span>`)}</p>`}
    <div class="map" style=${`grid-template-columns: 3em repeat(${lanes.length}, 1fr)`}>
      <div></div>
      ${chain.lanes.map(
        (l) => html`<div class="lane" key=${l.component} data-lane=${l.component}><b>${l.component}</b>
          <div class="sub">${l.instances.slice(0, 6).join(' ')}${l.instances.length > 6 ? ` +${l.instances.length - 6}` : ''}</div></div>`
      )}
      ${chain.steps.map((s) => {
        const c = col(s.lane);
        const from = Math.min(prev, c), to = Math.max(prev, c);
        prev = c;
        const cls = s.done ? 'done' : s.stuck ? 'stuck' : 'waiting';
        return html`
          <div class="num" key=${'n' + s.label} style=${`grid-column:1`}>${s.label}</div>
          <div class="flow" key=${'f' + s.label} style=${`grid-column:${from + 1} / ${to + 2}`}></div>
          <div class=${`step ${cls}`} key=${'s' + s.label} data-step=${s.label} data-done=${s.done} style=${`grid-column:${c + 1}`}>
            <b>${s.title}</b>
            <div class="sub">${s.object}${s.node ? ` · ${s.node}` : ''}</div>
            ${s.done ? html`<div class="took">+${ms(s.tookMs)} <span class="sub">(at ${ms(s.sinceStartMs)})</span></div>` : html`<div class="took">${s.stuck ? 'stuck' : 'waiting'}</div>`}
            ${s.stuck && html`<div class="why">${s.stuck}</div>`}
          </div>`;
      })}
    </div>
    <section id="pods"><h2>Pods <small>${chain.total}</small> ${states(chain.states)}</h2>
      ${chain.stuck.map((s) => html`<p class="stuck-reason" key=${s.step + s.reason + s.message + (s.event ? s.event.message : '')}
          data-step=${s.step}>step ${s.step}: ${s.event
            ? html`<span class="warning-event">Warning <b>${s.event.reason}</b> ${s.event.message} <span class="sub">(${s.event.source}${s.event.count > 1 ? ` ×${s.event.count}` : ''})</span></span>
              ${s.reason !== s.event.reason ? html` · <b>${s.reason}</b> ${s.message}` : ''}`
            : html`<b>${s.reason}</b> ${s.message}`}
          (${s.pods} pod${s.pods > 1 ? 's' : ''}, e.g. ${s.example})</p>`)}
      ${chain.oldSets.length > 0 && html`<p class="old">Draining: ${chain.oldSets.map((o) => html`<span key=${o.name}>replicaset ${o.name} (rev ${o.revision}) ${o.ready}/${o.replicas} </span>`)}</p>`}
      <${VirtualList} id="pod-nodes" items=${chain.nodes} rowHeight=${26} height=${260}
        row=${(n) => html`<div class="row"><span>${n.node}</span><span>${states(n.states)}</span></div>`} />
    </section>
    <${Events} events=${chain.events} />
  </div>`;
}

// ServiceView: a Service's endpoints by condition, the workloads and pods behind it.
function ServiceView({ service: v }) {
  if (!v) return html`<p>Waiting for the service…</p>`;
  if (!v.found) return html`<div id="service" data-found="false"><p class="error">${v.summary}</p></div>`;
  return html`<div id="service" data-rv=${v.resourceVersion} data-found="true" data-summary=${v.summary}>
    <h2>service/${v.name} <small>${v.namespace} · ${v.type} ${v.clusterIP} · ${v.ports.join(', ')}${v.selector ? ` · selector ${v.selector}` : ''}</small>
      <span class="summary" id="summary">${v.summary}</span></h2>
    <p id="endpoint-counts" data-ready=${v.ready} data-serving=${v.serving} data-terminating=${v.terminating} data-total=${v.total}>
      Endpoints ${v.total}: ${endpoints(v)}</p>
    <p id="backers">Backed by ${v.backers.length === 0 ? 'no pods (no pod matches the selector)' : v.backers.map(
      (b) => html`<span key=${b.kind + b.name} class="backer" data-name=${`${b.kind}/${b.name}`}>${link(b.kind, v.namespace, b.name, `${b.kind.toLowerCase()}/${b.name}`)} (${b.pods} pod${b.pods > 1 ? 's' : ''}) </span>`)}
      ${states(v.states)}</p>
    <section><h2>Endpoints <small>${v.endpoints.length}</small></h2>
      <${VirtualList} id="endpoint-list" items=${v.endpoints} rowHeight=${26} height=${260}
        row=${(e) => html`<div class="row endpoint" data-pod=${e.pod} data-ready=${e.ready} data-serving=${e.serving} data-terminating=${e.terminating}>
          <span>${e.address}</span><span>${e.pod ? `pod/${e.pod}` : ''}</span><span>${e.node}</span>
          <span>${e.ready ? html`<span class="state st-Ready">ready</span>` : html`<span class="state st-Pending">not ready</span>`}</span>
          <span>${e.serving ? 'serving' : 'not serving'}${e.terminating ? ' · terminating' : ''}</span></div>`} /></section>
    <section><h2>Pods <small>${v.pods.length}</small></h2>
      <${VirtualList} id="backing-pods" items=${v.pods} rowHeight=${26} height=${260}
        row=${(p) => html`<div class="row backing-pod" data-name=${p.name} data-endpoint=${p.endpoint}>
          <span>pod/${p.name}</span><span>${p.ip}</span><span>${p.node || '(no node)'}</span><span class=${`state st-${p.state}`}>${p.state}</span>
          <span>${p.endpoint ? 'an endpoint' : 'not an endpoint'}</span></div>`} /></section>
    <${Events} events=${v.events} />
  </div>`;
}

function App() {
  const [w, setW] = useState(route());
  useEffect(() => {
    const on = () => setW(route());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  const { cluster, chain, service, raft, connected } = useStream(w);
  return html`<header>
      <a href="#/"><b>Skiff</b></a> <span class=${`conn ${connected ? 'on' : 'off'}`} id="conn">${connected ? 'live' : 'reconnecting…'}</span>
      ${w && html`<span> · ${w.kind.toLowerCase()}/${w.namespace}/${w.name}</span>`}
    </header>
    <main>${!w ? html`<${ClusterView} cluster=${cluster} />` : w.kind === 'Service' ? html`<${ServiceView} service=${service} />` : html`<${ChainMap} chain=${chain} raft=${raft} />`}</main>`;
}

render(html`<${App} />`, document.getElementById('app'));
