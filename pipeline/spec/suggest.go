package spec

import "strings"

// suggest completes "unknown key" for key in the section at path: a near miss of one of its
// keys, the same key in another section, or else the keys the section knows.
func suggest(key, path string, fields []field) string {
	if near := nearest(key, fields); near != "" {
		return " (did you mean " + near + "?)"
	}
	if other := elsewhere(key, "", pipelineFields(new(Pipeline))); other != "" {
		return " (did you mean " + other + "?)"
	}
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return " (known keys: " + strings.Join(keys, ", ") + ")"
}

// nearest is the key of fields that key most likely misspells, or "".
func nearest(key string, fields []field) string {
	best, bestDist := "", 3
	for _, f := range fields {
		if normalize(key) == normalize(f.key) {
			return f.key
		}
		limit := 2
		if len(f.key) <= 4 {
			limit = 1
		}
		if d := distance(strings.ToLower(key), strings.ToLower(f.key)); d <= limit && d < bestDist {
			best, bestDist = f.key, d
		}
	}
	return best
}

// elsewhere is the path of key in the section tree under path, or "".
func elsewhere(key, path string, fields []field) string {
	for _, f := range fields {
		if normalize(key) == normalize(f.key) {
			return join(path, f.key)
		}
		if f.fields != nil {
			if p := elsewhere(key, join(path, f.key), f.fields()); p != "" {
				return p
			}
		}
	}
	return ""
}

// normalize makes cache_repo, cache-repo and CacheRepo alike.
func normalize(key string) string {
	return strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(key, "-", ""), "_", ""))
}

// distance is the Levenshtein distance between a and b (bytes; keys are ASCII).
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return len(a) + len(b)
	}
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
