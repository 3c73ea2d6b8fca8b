/* Seeds for fuzz-ignore: root file \1 sub/ file \1 paths, one per line. */
#include <stddef.h>

#define S(x) x, sizeof(x) - 1

static const struct {
	const char *s;
	size_t len;
} seeds[] = {
	{S("*.tmp\ndata/\n!keep.tmp\n# comment\n\\#hash\n\001!a.tmp\nlocal\n\001"
	   "a.tmp\nkeep.tmp\ndata\ndata/x\nsub/a.tmp\n#hash\n")},
	{S("**/logs\nout/**\na/**/z\n**/deep/**/x.*\nfo**/bar\n\001\001"
	   "logs\np/q/logs\nout/f\na/b/c/z\nfo/x/y/bar\nr/deep/s/t/x.c\n")},
	{S("[a-c]*\n[!x]?\n[[:alpha:]][[:digit:]]\n[]a]\n[\\]]\n[\n*[al]?\n\001\001"
	   "ball\nab\na1\n]\n[\nq\n")},
	{S("trail\\ \nsp ace  \n\\ \n/\n!\n*\n**\n\\\n\001\001trail \nsp ace\n \nx\n")},
	{S("\xEF\xBB\xBF" "first\r\nsecond\t\r\n/anchored\nmid/dle\n\001x/\n\001first\nsecond\t\n"
	   "anchored\nsub/anchored\nmid/dle\nx/mid/dle\n")},
	{S("*a*a*a*a*a*a*a*a*b\n-*-*-*-*-*-*-12-*-*-*-m-*-*-*\n\001\001"
	   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	   "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1\n")},
};

const char *const fuzz_seeds[] = {
	seeds[0].s, seeds[1].s, seeds[2].s, seeds[3].s, seeds[4].s, seeds[5].s,
};
const size_t fuzz_seed_lens[] = {
	seeds[0].len, seeds[1].len, seeds[2].len, seeds[3].len, seeds[4].len, seeds[5].len,
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
