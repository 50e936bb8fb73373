package dockerfile

// Vars is an ordered set of variables: the global (meta) scope of a build.
// It is not changed after it is built, so stages may share it.
type Vars struct {
	keys []string
	vals map[string]string
}

// NewVars builds Vars from alternating key, value pairs; a repeated key keeps
// its first position and takes the last value.
func NewVars(kv ...string) *Vars {
	v := &Vars{vals: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.set(kv[i], kv[i+1])
	}
	return v
}

func (v *Vars) set(key, value string) {
	if _, ok := v.vals[key]; !ok {
		v.keys = append(v.keys, key)
	}
	v.vals[key] = value
}

// Get returns the value of key; a nil Vars is empty.
func (v *Vars) Get(key string) (string, bool) {
	if v == nil {
		return "", false
	}
	val, ok := v.vals[key]
	return val, ok
}

// Keys returns the variable names in definition order.
func (v *Vars) Keys() []string {
	if v == nil {
		return nil
	}
	return append([]string(nil), v.keys...)
}

// Map returns a copy of the variables as a map.
func (v *Vars) Map() map[string]string {
	m := map[string]string{}
	if v == nil {
		return m
	}
	for k, val := range v.vals {
		m[k] = val
	}
	return m
}
