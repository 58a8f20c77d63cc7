// Package cache holds informers: list-and-watch caches of one kind each, with indexes and
// listers, and a factory that shares them within a process (client-go's tools/cache,
// smaller). See Informer for the consistency it guarantees.
package cache
