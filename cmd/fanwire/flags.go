package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// printFlags lists every flag of fs with its default. Unlike
// flag.PrintDefaults it also shows zero defaults (false, 0, ""), so --help
// documents every value the command will use.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		def := f.DefValue
		if g, ok := f.Value.(flag.Getter); ok {
			if _, isString := g.Get().(string); isString {
				def = strconv.Quote(def) // shows "" for an empty default
			}
		}
		fmt.Fprintf(tw, "  --%s %s\t%s (default %s)\n", f.Name, kind, usage, def)
	})
	tw.Flush()
}

// sizeValue is a byte-count flag that accepts plain bytes or a binary
// suffix: 65536, 64K, 64KiB, 1M, 1MiB, 1G, 1GiB (K = KiB = 1024).
type sizeValue[T int | int64] struct{ p *T }

func sizeVar[T int | int64](fs *flag.FlagSet, p *T, name string, def T, usage string) {
	*p = def
	fs.Var(sizeValue[T]{p}, name, usage)
}

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"G", 30}, {"M", 20}, {"K", 10}, {"B", 0}}

func (v sizeValue[T]) String() string {
	if v.p == nil {
		return "0"
	}
	return formatSize(int64(*v.p))
}

func (v sizeValue[T]) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	if int64(T(n)) != n {
		return fmt.Errorf("size %s is too large", s)
	}
	*v.p = T(n)
	return nil
}

func parseSize(s string) (int64, error) {
	num, shift := strings.TrimSpace(s), uint(0)
	for _, u := range sizeUnits {
		if cut, ok := strings.CutSuffix(num, u.suffix); ok {
			num, shift = strings.TrimSpace(cut), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("invalid size %q: want bytes, optionally with a K/KiB, M/MiB or G/GiB suffix", s)
	}
	return n << shift, nil
}

// formatSize prints n with the largest binary unit that divides it exactly.
func formatSize(n int64) string {
	for _, u := range sizeUnits[:3] {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
