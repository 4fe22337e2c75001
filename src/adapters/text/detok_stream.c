/*
 * detok_stream.c - incremental detokenization.
 *
 * Bytes move through three buffers:
 *   raw    pieces as fed, not yet cleaned (clean_spaces vocabularies only
 *          keep bytes here; others pass straight through);
 *   ready  cleaned bytes whose UTF-8 is not yet checked;
 *   out    what the last call returns.
 *
 * Why cutting raw is safe: llama.cpp's three clean_spaces passes only ever
 * remove spaces, and each decision looks at most one byte back and two
 * bytes ahead of an apostrophe or space. If raw[k-2], raw[k-1] and raw[k]
 * are neither ' ' nor '\'', no decision on either side of k depends on the
 * other side and none of the three bytes is removed, so
 * clean(raw) == clean(raw[0..k)) + clean(raw[k..]). We clean up to the last
 * such k and keep the rest; at the end everything left is cleaned with the
 * end-of-text rules, as decode does.
 */
#include "detok_stream.h"

#include <stdlib.h>
#include <string.h>

#include "unicode.h"
#include "base/utf8.h"
#include "base/strbuf.h"

struct detok_stream {
    const tokenizer *tk;
    int remove_special, unparse_special, continuation;
    int started;      /* a token was fed since the start */
    int strip;        /* the next token loses one leading space */
    int held_eos;     /* an EOS that decode would drop if it were last */
    strbuf raw, ready, out;
    size_t raw_checked; /* cut positions below this were already rejected */
};

static detok_stream *create(const tokenizer *tk, int remove_special, int unparse_special,
                            int continuation, sem_err *err)
{
    if (!tk) {
        sem_err_set(err, SEM_EINVAL, "detok_stream: the tokenizer is NULL");
        return NULL;
    }
    detok_stream *s = calloc(1, sizeof *s);
    if (!s) {
        sem_err_set(err, SEM_ENOMEM, "detok_stream: out of memory");
        return NULL;
    }
    s->tk = tk;
    s->remove_special = remove_special;
    s->unparse_special = unparse_special;
    s->continuation = continuation;
    detok_stream_reset(s);
    return s;
}

detok_stream *detok_stream_new(const tokenizer *tk, int remove_special, int unparse_special,
                               sem_err *err)
{
    return create(tk, remove_special, unparse_special, 0, err);
}

detok_stream *detok_stream_new_continuation(const tokenizer *tk, int remove_special,
                                            int unparse_special, sem_err *err)
{
    return create(tk, remove_special, unparse_special, 1, err);
}

void detok_stream_free(detok_stream *s)
{
    if (!s)
        return;
    strbuf_free(&s->raw);
    strbuf_free(&s->ready);
    strbuf_free(&s->out);
    free(s);
}

void detok_stream_reset(detok_stream *s)
{
    s->started = 0;
    s->strip = !s->continuation && tokenizer_add_space_prefix(s->tk);
    s->held_eos = 0;
    strbuf_truncate(&s->raw, 0);
    strbuf_truncate(&s->ready, 0);
    s->raw_checked = 0;
}

size_t detok_stream_pending(const detok_stream *s) { return s->raw.len + s->ready.len; }

static int plain(char c) { return c != ' ' && c != '\''; }

/* Appends one token's piece to raw, with decode's per-token rules. */
static int add_piece(detok_stream *s, int32_t id)
{
    int strip = s->strip;
    s->strip = 0;
    uint32_t attr = tokenizer_token_attr(s->tk, id);
    if (!s->unparse_special && (attr & (TOKEN_ATTR_UNKNOWN | TOKEN_ATTR_CONTROL)))
        return 1;
    size_t len = 0;
    const char *p = tokenizer_piece(s->tk, id, &len);
    if (strip && len && p[0] == ' ') {
        p++;
        len--;
    }
    strbuf_append(&s->raw, p, len);
    return !s->raw.oom;
}

/* Moves the cleanable prefix of raw (all of it when `all`) to ready. */
static int settle(detok_stream *s, int all)
{
    strbuf *r = &s->raw;
    size_t cut = 0;
    if (all || !tokenizer_clean_spaces(s->tk)) {
        cut = r->len;
    } else {
        size_t lo = s->raw_checked > 2 ? s->raw_checked : 2;
        for (size_t k = r->len; k-- > lo;) {
            if (plain(r->data[k]) && plain(r->data[k - 1]) && plain(r->data[k - 2])) {
                cut = k;
                break;
            }
        }
    }
    if (!cut) {
        s->raw_checked = r->len; /* every cut position so far is unsafe */
        return 1;
    }
    if (!strbuf_reserve(&s->ready, cut))
        return 0;
    char *dst = s->ready.data + s->ready.len;
    memcpy(dst, r->data, cut);
    strbuf_commit(&s->ready, tokenizer_clean_spaces(s->tk) ? tokenizer_clean_text(dst, cut) : cut);
    strbuf_consume(r, cut);
    s->raw_checked = r->len; /* the rest lies after the last safe position */
    return 1;
}

/* Moves the complete UTF-8 of ready to out (ill-formed parts as U+FFFD);
 * an incomplete tail stays unless `all`, when it becomes U+FFFD. */
static int emit(detok_stream *s, int all)
{
    strbuf *rd = &s->ready;
    size_t whole = all ? rd->len : utf8_whole_prefix(rd->data, rd->len);
    strbuf_truncate(&s->out, 0);
    if (!strbuf_reserve(&s->out, 3 * whole))
        return 0;
    strbuf_commit(&s->out, utf8_sanitize(rd->data, whole, s->out.data));
    strbuf_consume(rd, whole);
    return 1;
}

sem_status detok_stream_feed(detok_stream *s, int32_t id, const char **text, size_t *len,
                             sem_err *err)
{
    *text = "";
    *len = 0;
    if (id < 0 || (size_t)id >= tokenizer_n_vocab(s->tk))
        return sem_err_set(err, SEM_EINVAL,
                           "detok_stream: token id %d is not in the vocabulary of %zu tokens", id,
                           tokenizer_n_vocab(s->tk));
    const tokenizer *tk = s->tk;
    int ok = 1;
    if (!s->started) {
        s->started = 1;
        if (!s->continuation && s->remove_special && tokenizer_add_bos(tk) &&
            id == tokenizer_bos(tk)) {
            s->strip = 0; /* decode drops the BOS and keeps the next space */
            return SEM_OK;
        }
    }
    if (s->held_eos) {
        s->held_eos = 0;
        ok = add_piece(s, tokenizer_eos(tk));
    }
    if (ok && s->remove_special && tokenizer_add_eos(tk) && id == tokenizer_eos(tk))
        s->held_eos = 1; /* dropped if it turns out to be the last token */
    else if (ok)
        ok = add_piece(s, id);
    if (ok)
        ok = settle(s, 0) && emit(s, 0);
    if (!ok)
        return sem_err_set(err, SEM_ENOMEM, "detok_stream: out of memory");
    *text = s->out.data;
    *len = s->out.len;
    return SEM_OK;
}

sem_status detok_stream_finish(detok_stream *s, const char **text, size_t *len, sem_err *err)
{
    *text = "";
    *len = 0;
    s->held_eos = 0;
    if (!settle(s, 1) || !emit(s, 1))
        return sem_err_set(err, SEM_ENOMEM, "detok_stream: out of memory");
    *text = s->out.data;
    *len = s->out.len;
    detok_stream_reset(s);
    return SEM_OK;
}
