/*
 * tokenizer.h - text <-> token ids for the vocabularies in GGUF files,
 * with llama.cpp's exact behaviour (llama-vocab.cpp at 91f8c9c5f).
 *
 * Two vocabulary kinds (tokenizer.ggml.model):
 *   "llama"  SentencePiece-style (SPM): highest-score bigram merges over
 *            UTF-8 characters, spaces written as U+2581, unknown pieces
 *            fall back to <0xXX> byte tokens.
 *   "gpt2"   byte-level BPE: a pre-tokenizer (tokenizer.ggml.pre, see
 *            pretokenizer.h) splits the text into words, each word's bytes
 *            are merged by merge rank.
 * Before either runs, special tokens are cut out of the text: user-defined
 * tokens always, control tokens only when parse_special is set.
 * docs/tokenizers.md lists the supported pre-tokenizers and every rule.
 *
 * Ownership: tokenizer_load copies what it needs; the gguf_file may be
 * closed afterwards. Strings returned by the getters belong to the
 * tokenizer. Buffers returned through out-parameters are malloc'd and
 * belong to the caller.
 *
 * Threads: a tokenizer is immutable after tokenizer_load; every function
 * may be called from any number of threads at once (each call allocates
 * its own working memory). tokenizer_free must not race with other calls.
 *
 * Errors: loading fails with SEM_EUNSUPPORTED for a tokenizer.ggml.model or
 * .pre value semantic does not implement (the message lists the supported
 * ones) and SEM_ECORRUPT, naming the key, for malformed vocabulary metadata.
 * Invalid token ids give SEM_EINVAL naming the id.
 */
#ifndef SEM_TOKENIZER_H
#define SEM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/gguf/gguf.h"
#include "domain/status.h"

typedef struct tokenizer tokenizer;

/* Loads the vocabulary of an open GGUF (vocab-only files have no tensors).
 * Copies what it needs: the gguf_file may be closed afterwards. */
tokenizer *tokenizer_load(const gguf_file *f, sem_err *err);
void tokenizer_free(tokenizer *tk);

/*
 * text -> ids. add_special: add BOS/EOS as the vocab says; parse_special:
 * match control-token text. *out is malloc'd (never NULL on success, even
 * for zero tokens), caller frees. Any bytes are accepted: invalid UTF-8 is
 * tokenized as llama.cpp does (BPE: as U+FFFD; SPM: byte tokens).
 */
sem_status tokenizer_encode(const tokenizer *tk, const char *text, size_t len, int add_special,
                            int parse_special, int32_t **out, size_t *n_out, sem_err *err);

/* Bytes of one token's piece (llama_token_to_piece with special=true,
 * lstrip 0); never NULL for a valid id; NULL (and *len = 0) for an invalid
 * one. The bytes may be a partial UTF-8 sequence and are not NUL-terminated
 * in general. */
const char *tokenizer_piece(const tokenizer *tk, int32_t id, size_t *len);

/* llama_detokenize(tokens, remove_special, unparse_special) semantics;
 * *out malloc'd and NUL-terminated (*out_len excludes the NUL). */
sem_status tokenizer_decode(const tokenizer *tk, const int32_t *ids, size_t n, int remove_special,
                            int unparse_special, char **out, size_t *out_len, sem_err *err);

size_t tokenizer_n_vocab(const tokenizer *tk);
int32_t tokenizer_bos(const tokenizer *tk); /* -1 when none */
int32_t tokenizer_eos(const tokenizer *tk);
int32_t tokenizer_eot(const tokenizer *tk);
int tokenizer_add_bos(const tokenizer *tk);
int tokenizer_add_eos(const tokenizer *tk);
int tokenizer_is_eog(const tokenizer *tk, int32_t id); /* end of generation, per llama.cpp's rules */
int tokenizer_is_control(const tokenizer *tk, int32_t id);
const char *tokenizer_kind(const tokenizer *tk); /* "spm" or "bpe" */
const char *tokenizer_pre(const tokenizer *tk);  /* pre-tokenizer name */

/* ---- additions */

int32_t tokenizer_unk(const tokenizer *tk); /* -1 when none */
int32_t tokenizer_pad(const tokenizer *tk);
int32_t tokenizer_sep(const tokenizer *tk);
int32_t tokenizer_nl(const tokenizer *tk); /* the newline token llama.cpp reports */
/* Whether decode drops the space the SPM encoder put in front of the text. */
int tokenizer_add_space_prefix(const tokenizer *tk);
/* Whether decode applies llama.cpp's clean_spaces rules (BPE schemes). */
int tokenizer_clean_spaces(const tokenizer *tk);
/* Applies llama.cpp's clean_spaces rules in place (what decode does when
 * tokenizer_clean_spaces is set): drops the space in " ?", " !", " .",
 * " ,", turns " ' " into "'", drops the space before 's 'm 're 've.
 * Returns the new length. */
size_t tokenizer_clean_text(char *text, size_t len);
/* The raw vocabulary text of a token (e.g. "<|im_end|>", "\xe2\x96\x81the");
 * NULL for an invalid id. */
const char *tokenizer_token_text(const tokenizer *tk, int32_t id, size_t *len);

/* Token attributes as llama.cpp keeps them (llama_token_attr bits). */
enum {
    TOKEN_ATTR_UNDEFINED = 0,
    TOKEN_ATTR_UNKNOWN = 1 << 0,
    TOKEN_ATTR_UNUSED = 1 << 1,
    TOKEN_ATTR_NORMAL = 1 << 2,
    TOKEN_ATTR_CONTROL = 1 << 3,
    TOKEN_ATTR_USER_DEFINED = 1 << 4,
    TOKEN_ATTR_BYTE = 1 << 5,
    TOKEN_ATTR_LSTRIP = 1 << 7,
    TOKEN_ATTR_RSTRIP = 1 << 8,
};
/* The attribute bits of id, or 0 for an invalid id. */
uint32_t tokenizer_token_attr(const tokenizer *tk, int32_t id);

#endif
