package spec

import (
	"fmt"
	"strings"
)

// Word is a string value of the pipeline file as its variable syntax reads it: literal text
// and variable references, in order.
//
//	${NAME} or $NAME   a reference to NAME (letters, digits and _, not starting with a digit)
//	${NAME:-word}      NAME's value when NAME is set and not empty, else word
//	${NAME:+word}      word when NAME is set and not empty, else nothing
//	$$                 a literal $
//
// word is a Word itself; references nest at most 8 deep. A $ followed by anything else is a
// literal $. Expand gives a Word its value; render writes it in each CI system's syntax.
// Literal text is never empty, and two literal pieces never follow each other.
type Word []Piece

// Piece is literal text (Name is "") or a variable reference.
type Piece struct {
	Text string // the literal text, with $$ read as $
	Name string // the variable referred to
	Op   string // "" for ${NAME}, ":-" for ${NAME:-word}, ":+" for ${NAME:+word}
	Word Word   // the word of ":-" and ":+"
}

// maxNesting bounds references in defaults in references (${A:-${B:-...}}): without it a
// hostile value costs time quadratic in its length.
const maxNesting = 8

// ParseWord reads s, a string value of the pipeline file. A malformed reference (no closing },
// no valid name, an operator other than :- and :+, too deep a nesting) is an error quoting it,
// the first one if there are more. The Word returned with the error reads the malformed
// reference, and the rest of the word it stands in, as literal text, for callers that pass on
// what they cannot read (Parse rejects such a file).
func ParseWord(s string) (Word, error) {
	var r wordReader
	w := r.word(s, 1)
	return w, r.err
}

// wordReader reads Words, keeping the first error.
type wordReader struct{ err error }

// word reads s at nesting depth depth (1: a whole value).
func (r *wordReader) word(s string, depth int) Word {
	if depth > maxNesting {
		r.fail(fmt.Errorf("references nest more than %d deep", maxNesting))
		if s == "" {
			return nil
		}
		return Word{{Text: s}}
	}
	var w Word
	var lit strings.Builder // literal text not yet in w
	flush := func() {
		if lit.Len() > 0 {
			w = append(w, Piece{Text: lit.String()})
			lit.Reset()
		}
	}
read:
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			break
		}
		lit.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$$"):
			lit.WriteByte('$')
			s = s[2:]
		case strings.HasPrefix(s, "${"):
			p, n, err := r.braced(s, depth)
			if err != nil {
				r.fail(err)
				break read // s, from the malformed reference on, is literal text
			}
			flush()
			w, s = append(w, p), s[n:]
		default:
			n := nameLen(s[1:])
			if n == 0 {
				lit.WriteByte('$')
				s = s[1:]
				continue
			}
			flush()
			w, s = append(w, Piece{Name: s[1 : 1+n]}), s[1+n:]
		}
	}
	lit.WriteString(s)
	flush()
	return w
}

// braced reads ${NAME}, ${NAME:-word} or ${NAME:+word} at the start of s; n is its length.
func (r *wordReader) braced(s string, depth int) (p Piece, n int, err error) {
	end := closing(s)
	if end < 0 {
		return Piece{}, 0, fmt.Errorf("%s has no closing }", clip(s))
	}
	body := s[2:end]
	l := nameLen(body)
	p.Name, p.Op = body[:l], body[l:]
	word := ""
	if strings.HasPrefix(p.Op, ":-") || strings.HasPrefix(p.Op, ":+") {
		p.Op, word = p.Op[:2], p.Op[2:]
	}
	if l == 0 || (p.Op != "" && p.Op != ":-" && p.Op != ":+") {
		return Piece{}, 0, fmt.Errorf("%s is not a variable reference: write ${NAME}, ${NAME:-default} or ${NAME:+alternative} (names: letters, digits, _), or $$ for a $", clip(s[:end+1]))
	}
	if p.Op != "" {
		p.Word = r.word(word, depth+1)
	}
	return p, end + 1, nil
}

func (r *wordReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// closing is the index of the } closing the ${ s starts with, or -1.
func closing(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			i++
		case strings.HasPrefix(s[i:], "${"):
			depth++
			i++
		case s[i] == '}':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// nameLen is the length of the variable name s starts with (0 if none).
func nameLen(s string) int {
	for i, r := range s {
		letter := r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return i
		}
	}
	return len(s)
}

// clip shortens a reference quoted in a message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
