/* Seeds for fuzz-ignore: root file \1 sub/ file \1 paths, one per line. */
#include <stddef.h>

#define S0 "*.tmp\ndata/\n!keep.tmp\n# comment\n\\#hash\n\001!a.tmp\nlocal\n\001" \
	   "a.tmp\nkeep.tmp\ndata\ndata/x\nsub/a.tmp\n#hash\n"
#define S1 "**/logs\nout/**\na/**/z\n**/deep/**/x.*\nfo**/bar\n\001\001" \
	   "logs\np/q/logs\nout/f\na/b/c/z\nfo/x/y/bar\nr/deep/s/t/x.c\n"
#define S2 "[a-c]*\n[!x]?\n[[:alpha:]][[:digit:]]\n[]a]\n[\\]]\n[\n*[al]?\n\001\001" \
	   "ball\nab\na1\n]\n[\nq\n"
#define S3 "trail\\ \nsp ace  \n\\ \n/\n!\n*\n**\n\\\n\001\001trail \nsp ace\n \nx\n"
#define S4 "\xEF\xBB\xBF" "first\r\nsecond\t\r\n/anchored\nmid/dle\n\001x/\n\001first\n" \
	   "second\t\nanchored\nsub/anchored\nmid/dle\nx/mid/dle\n"
#define S5 "*a*a*a*a*a*a*a*a*b\n-*-*-*-*-*-*-12-*-*-*-m-*-*-*\n\001\001" \
	   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" \
	   "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1\n"

const char *const fuzz_seeds[] = {S0, S1, S2, S3, S4, S5};
const size_t fuzz_seed_lens[] = {
	sizeof(S0) - 1, sizeof(S1) - 1, sizeof(S2) - 1,
	sizeof(S3) - 1, sizeof(S4) - 1, sizeof(S5) - 1,
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
