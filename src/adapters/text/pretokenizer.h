/*
 * pretokenizer.h - the word splitting that byte-level BPE vocabularies run
 * before merging, one scheme per `tokenizer.ggml.pre` name, as llama.cpp
 * does it.
 *
 * A scheme is an ordered list of regexes. Each regex splits every current
 * segment further: its matches become segments and so does the text between
 * two matches. Two regexes (GPT-2's and Llama 3's) are run by hand-written
 * scanners that reproduce llama.cpp's custom splitters, which differ from a
 * regex engine in corner cases; `\s+$` is also done by hand. The others run
 * on PCRE2 (32-bit code units, one unit per code point) the way llama.cpp
 * runs them on std::regex: patterns that use \p{..} classes see a
 * "collapsed" text where every non-ASCII code point is replaced by one
 * stand-in unit for its class (so \p{L} matches ASCII letters or the letter
 * stand-in), and every pattern sees non-ASCII White_Space as a vertical tab.
 *
 * Threads: a pretokenizer is immutable after pretokenizer_create and may be
 * used by any number of threads at once; each call allocates its own state.
 */
#ifndef SEM_PRETOKENIZER_H
#define SEM_PRETOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"

typedef struct pretokenizer pretokenizer;

/* Per-scheme settings llama.cpp ties to the `pre` name. */
typedef struct pretokenizer_traits {
    int clean_spaces;  /* detokenizer removes spaces before ?!., and some ' */
    int ignore_merges; /* a word that is itself a token is not merged */
    int add_bos;       /* the scheme turns add_bos on (the file may override) */
    int bos_none;      /* the scheme has no BOS token unless the file names one */
} pretokenizer_traits;

/*
 * Compiles the scheme named `name` (a tokenizer.ggml.pre value; NULL or ""
 * selects "default"). Unknown names give SEM_EUNSUPPORTED naming the value
 * and listing the supported ones.
 */
sem_status pretokenizer_create(const char *name, pretokenizer **out, sem_err *err);
void pretokenizer_free(pretokenizer *p);

const char *pretokenizer_name(const pretokenizer *p);
pretokenizer_traits pretokenizer_get_traits(const pretokenizer *p);

/* Writes the comma-separated list of supported names into buf; with
 * primary_only, one name per scheme (aliases left out). */
void pretokenizer_supported(char *buf, size_t cap, int primary_only);

/*
 * Splits the code points cpts[0..n) into words. On success *lens (malloc'd,
 * caller frees) holds *n_words word lengths in code points, in order,
 * summing to n; a length may be 0 (llama.cpp keeps empty regex matches).
 */
sem_status pretokenizer_split(const pretokenizer *p, const uint32_t *cpts, size_t n,
                              size_t **lens, size_t *n_words, sem_err *err);

#endif
