package snapshot

import (
	"path"
	"sort"
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// changeKind says what a layer entry does.
type changeKind int

const (
	changeAdd      changeKind = iota // the path's current content and metadata
	changeWhiteout                   // ".wh.<name>": the path was deleted
	changeOpaque                     // ".wh..wh..opq": the directory hides all lower content
)

// change is one entry of a layer, named by its image path inside the layer.
type change struct {
	path string // image path of the tar entry (for whiteouts, the ".wh." name)
	kind changeKind
	rec  record // current stat data, for changeAdd
}

// differ compares a baseline with a fresh walk.
type differ struct {
	old state
	cur state
	// inScope limits which baseline paths may turn into whiteouts (nil: all of them).
	inScope func(string) bool
	// lookup finds the current record of a path outside cur (parents in TakePaths).
	lookup func(string) (record, bool, error)
	// excluded paths are never added, nor marked opaque (nil: none); their deletions still count.
	excluded func(string) bool
}

func (d *differ) isExcluded(p string) bool { return d.excluded != nil && d.excluded(p) }

func (d *differ) current(p string) (record, bool, error) {
	if r, ok := d.cur[p]; ok {
		return r, true, nil
	}
	if d.lookup == nil {
		return record{}, false, nil
	}
	return d.lookup(p)
}

// changes lists the layer entries, sorted parents first, and the records of every added path
// (which includes parent directories found outside cur).
func (d *differ) changes() ([]change, state, error) {
	added := state{}
	opaque := map[string]bool{}
	for p, r := range d.cur {
		if p == "/" || d.isExcluded(p) {
			continue
		}
		o, existed := d.old[p]
		if !existed || o != r {
			added[p] = r
		}
		if existed && r.isDir() && o.isDir() && !r.sameInode(o) {
			opaque[p] = true
		}
	}
	if len(opaque) > 0 {
		// A replaced directory is shipped whole: lower layers' content is hidden by the marker.
		for p, r := range d.cur {
			if p != "/" && !d.isExcluded(p) && underOpaque(parentPath(p), opaque) {
				added[p] = r
			}
		}
	}

	var out []change
	for p := range d.old {
		if p == "/" || (d.inScope != nil && !d.inScope(p)) {
			continue
		}
		if _, still := d.cur[p]; still {
			continue
		}
		dir := parentPath(p)
		pr, ok, err := d.current(dir)
		if err != nil {
			return nil, nil, err
		}
		// Only the topmost deletion needs a whiteout; a deleted, replaced or opaque parent
		// already hides it.
		if !ok || !pr.isDir() || underOpaque(dir, opaque) {
			continue
		}
		if or, ok := d.old[dir]; ok && !or.sameInode(pr) {
			continue
		}
		out = append(out, change{path: childPath(dir, whiteoutPrefix+path.Base(p)), kind: changeWhiteout})
	}
	for p := range opaque {
		out = append(out, change{path: childPath(p, opaqueMarker), kind: changeOpaque})
	}

	// Every entry's parents go in too, so the layer is self-consistent.
	withParents := state{}
	var addParents func(p string) error
	addParents = func(p string) error {
		if p == "/" {
			return nil
		}
		if _, done := withParents[p]; done {
			return nil
		}
		r, ok := added[p]
		if !ok {
			var err error
			r, ok, err = d.current(p)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
		}
		withParents[p] = r
		return addParents(parentPath(p))
	}
	for p := range added {
		if err := addParents(p); err != nil {
			return nil, nil, err
		}
	}
	for _, c := range out {
		if err := addParents(parentPath(c.path)); err != nil {
			return nil, nil, err
		}
	}
	for p, r := range withParents {
		out = append(out, change{path: p, kind: changeAdd, rec: r})
	}
	sortChanges(out)
	return out, withParents, nil
}

// underOpaque reports whether p or one of its ancestors is an opaque (replaced) directory.
func underOpaque(p string, opaque map[string]bool) bool {
	for {
		if opaque[p] {
			return true
		}
		if p == "/" {
			return false
		}
		p = parentPath(p)
	}
}

// sortChanges orders entries component-wise so parents come right before their children.
func sortChanges(cs []change) {
	keys := make(map[string]string, len(cs))
	for _, c := range cs {
		keys[c.path] = sortKey(c.path)
	}
	sort.Slice(cs, func(i, j int) bool { return keys[cs[i].path] < keys[cs[j].path] })
}
