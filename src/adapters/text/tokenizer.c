/*
 * tokenizer.c - SPM and byte-level BPE tokenization, llama.cpp's way.
 *
 * Loading (tokenizer_load) follows llama_vocab::impl::load step by step:
 * vocabulary kind and pre-tokenizer, token texts/scores/types, BPE merges,
 * the newline token, special-token ids from the file, add_bos/add_eos,
 * special tokens found by their text (EOT, FIM, end-of-generation), the
 * special-token list (longest first), every token's piece, and the per-model
 * strip attributes. The copies it keeps:
 *   tok[id]     text and piece offsets, score, attributes
 *   texts       every token text, back to back (not NUL-terminated)
 *   pieces      every token piece (llama_token_to_piece, special=true)
 *   index       open-addressing hash: text -> id
 *   merges      open-addressing hash: (left id, right id) -> rank, result id
 *   trie        the special-token texts, to find which occur in a text
 *
 * Encoding (tokenizer_encode) is three stages:
 *   1. partition: cut special tokens out of the text. llama.cpp walks its
 *      special-token list (longest text first) and splits every remaining
 *      raw fragment at each occurrence; we do the same, but only for the
 *      tokens the trie finds in the text, so the cost does not grow with
 *      the size of the list.
 *   2. per raw fragment, SPM: escape spaces as U+2581 (after an optional
 *      leading space), split into UTF-8 characters, repeatedly merge the
 *      adjacent pair whose concatenation is the highest-scoring token
 *      (ties: leftmost), emit tokens or <0xXX> byte tokens.
 *      BPE: decode code points, split into words (pretokenizer.c), map each
 *      byte to its byte-level token, repeatedly merge the adjacent pair of
 *      lowest merge rank (ties: leftmost).
 *   3. BOS/EOS around it when add_special says so.
 * Both merge loops use a binary heap of candidate pairs and skip stale
 * entries, so a fragment of n characters costs O(n log n).
 */
#include "tokenizer.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pretokenizer.h"
#include "unicode.h"
#include "base/utf8.h"
#include "base/strbuf.h"

#define KEY_PREFIX "tokenizer.ggml."

typedef struct token_info {
    uint32_t text_off, text_len;
    uint32_t piece_off, piece_len;
    float score;
    uint32_t attr;
} token_info;

typedef struct index_slot {
    uint32_t hash;
    uint32_t id1; /* id + 1; 0 = empty */
} index_slot;

typedef struct merge_slot {
    uint64_t key; /* ((left + 1) << 32) | (right + 1); 0 = empty */
    int32_t rank;
    int32_t result;
} merge_slot;

typedef struct trie_slot {
    uint64_t key; /* ((node << 8) | byte) + 1; 0 = empty */
    int32_t child;
} trie_slot;

struct tokenizer {
    int is_bpe;
    char pre_name[64];
    pretokenizer *pre;      /* BPE only */
    size_t n_vocab;
    token_info *tok;        /* [n_vocab] */
    char *texts;            /* all token texts */
    char *pieces;           /* all token pieces */
    index_slot *index;      /* [index_mask + 1] */
    size_t index_mask;
    merge_slot *merges;     /* [merges_mask + 1], BPE only */
    size_t merges_mask;
    int32_t byte_token[256];/* SPM: <0xXX> (or the raw byte); BPE: byte-level char; -1 none */

    int32_t bos, eos, eot, eom, unk, sep, pad, mask, nl;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    int add_bos, add_eos, add_sep, add_space_prefix, clean_spaces, ignore_merges;

    int32_t *eog;           /* sorted end-of-generation ids */
    size_t n_eog;
    int32_t *special;       /* control/user-defined/unknown ids, longest text first */
    size_t n_special;
    trie_slot *trie;        /* edges of the special-token trie, node 0 = root */
    size_t trie_mask;
    int32_t *trie_term;     /* [trie_nodes]: index into special[] ending here, or -1 */
    size_t trie_nodes;
    uint8_t first_byte[32]; /* bit set of the first bytes of special texts */
};

/* ---------------------------------------------------------------- small helpers */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

static int c_isspace(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static const char *text_of(const tokenizer *tk, int32_t id)
{
    return tk->texts + tk->tok[id].text_off;
}

/* The id whose text is a followed by b, or -1. */
static int32_t lookup2(const tokenizer *tk, const char *a, size_t na, const char *b, size_t nb)
{
    uint64_t h = fnv(fnv(FNV_OFFSET, a, na), b, nb);
    uint32_t h32 = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & tk->index_mask;; i = (i + 1) & tk->index_mask) {
        const index_slot *s = &tk->index[i];
        if (!s->id1)
            return -1;
        if (s->hash != h32)
            continue;
        const token_info *t = &tk->tok[s->id1 - 1];
        const char *x = tk->texts + t->text_off;
        if (t->text_len == na + nb && memcmp(x, a, na) == 0 && (nb == 0 || memcmp(x + na, b, nb) == 0))
            return (int32_t)(s->id1 - 1);
    }
}

static int32_t lookup(const tokenizer *tk, const char *s, size_t n)
{
    return lookup2(tk, s, n, "", 0);
}

/* Inserts id (text already in tk->texts); returns the id already holding
 * that text, or -1 when it was new. */
static int32_t index_insert(tokenizer *tk, int32_t id)
{
    const token_info *t = &tk->tok[id];
    uint64_t h = fnv(FNV_OFFSET, tk->texts + t->text_off, t->text_len);
    uint32_t h32 = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & tk->index_mask;; i = (i + 1) & tk->index_mask) {
        index_slot *s = &tk->index[i];
        if (!s->id1) {
            s->hash = h32;
            s->id1 = (uint32_t)id + 1;
            return -1;
        }
        if (s->hash != h32)
            continue;
        const token_info *o = &tk->tok[s->id1 - 1];
        if (o->text_len == t->text_len &&
            memcmp(tk->texts + o->text_off, tk->texts + t->text_off, t->text_len) == 0)
            return (int32_t)(s->id1 - 1);
    }
}

static const merge_slot *merge_find(const tokenizer *tk, int32_t left, int32_t right)
{
    uint64_t key = ((uint64_t)(uint32_t)(left + 1) << 32) | (uint32_t)(right + 1);
    for (size_t i = (size_t)mix64(key) & tk->merges_mask;; i = (i + 1) & tk->merges_mask) {
        const merge_slot *s = &tk->merges[i];
        if (s->key == key)
            return s;
        if (!s->key)
            return NULL;
    }
}

static int32_t trie_child(const tokenizer *tk, int32_t node, uint8_t byte)
{
    uint64_t key = (((uint64_t)node << 8) | byte) + 1;
    for (size_t i = (size_t)mix64(key) & tk->trie_mask;; i = (i + 1) & tk->trie_mask) {
        const trie_slot *s = &tk->trie[i];
        if (s->key == key)
            return s->child;
        if (!s->key)
            return -1;
    }
}

/* A growable array of token ids. */
typedef struct tokvec {
    int32_t *v;
    size_t n, cap;
    int oom;
} tokvec;

static void push(tokvec *t, int32_t id)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        int32_t *v = realloc(t->v, cap * sizeof *v);
        if (!v) {
            t->oom = 1;
            return;
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = id;
}

/* ---------------------------------------------------------------- the merge heap */

/* A candidate pair: SPM orders by token score, BPE by -rank; the larger
 * key wins, ties go to the leftmost pair (llama.cpp's comparators). */
typedef struct pair {
    float key;
    int32_t left, right;
    uint32_t size; /* bytes of left + right when the pair was queued */
    int32_t result;
} pair;

typedef struct heap {
    pair *v;
    size_t n, cap;
    int oom;
} heap;

static int pair_before(const pair *a, const pair *b)
{
    return a->key > b->key || (a->key == b->key && a->left < b->left);
}

static void heap_push(heap *h, pair p)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        pair *v = realloc(h->v, cap * sizeof *v);
        if (!v) {
            h->oom = 1;
            return;
        }
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_before(&p, &h->v[up]))
            break;
        h->v[i] = h->v[up];
        i = up;
    }
    h->v[i] = p;
}

static pair heap_pop(heap *h)
{
    pair top = h->v[0];
    pair last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && pair_before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!pair_before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

/* The symbols of one fragment or word: a doubly linked list over an array. */
typedef struct symbol {
    uint32_t start, n; /* bytes in the working buffer; n == 0 once merged away */
    int32_t prev, next;
    int32_t id;        /* BPE: token id of the symbol, -1 if none */
} symbol;

/* ---------------------------------------------------------------- SPM */

static void spm_try_pair(const tokenizer *tk, const char *buf, const symbol *sym, int32_t l,
                         int32_t r, heap *h)
{
    if (l < 0 || r < 0)
        return;
    int32_t id = lookup(tk, buf + sym[l].start, sym[l].n + sym[r].n);
    if (id < 0)
        return;
    pair p = {tk->tok[id].score, l, r, sym[l].n + sym[r].n, id};
    heap_push(h, p);
}

/* Tokenizes one raw fragment, llm_tokenizer_spm_session::tokenize. */
static sem_status spm_fragment(const tokenizer *tk, const char *s, size_t n, int space_prefix,
                               tokvec *out, sem_err *err)
{
    sem_status st = SEM_OK;
    size_t cap = (n + 1) * 3; /* every byte may become U+2581 */
    char *buf = malloc(cap);
    /* One symbol per lead byte: up to one per buffer byte, since an invalid
     * lead byte can split the bytes of an escaped space. */
    symbol *sym = malloc(cap * sizeof *sym);
    heap h = {0};
    if (!buf || !sym)
        goto oom;
    size_t bl = 0;
    if (space_prefix) {
        memcpy(buf, "\xe2\x96\x81", 3);
        bl = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(buf + bl, "\xe2\x96\x81", 3);
            bl += 3;
        } else {
            buf[bl++] = s[i];
        }
    }
    int32_t ns = 0;
    for (size_t off = 0; off < bl;) {
        size_t len = unicode_len_utf8((uint8_t)buf[off]);
        if (len > bl - off)
            len = bl - off;
        sym[ns] = (symbol){(uint32_t)off, (uint32_t)len, ns - 1, off + len == bl ? -1 : ns + 1, -1};
        off += len;
        ns++;
    }
    for (int32_t i = 1; i < ns; i++)
        spm_try_pair(tk, buf, sym, i - 1, i, &h);
    while (h.n && !h.oom) {
        pair p = heap_pop(&h);
        symbol *l = &sym[p.left], *r = &sym[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size)
            continue; /* stale: one side was merged since */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = p.left;
        spm_try_pair(tk, buf, sym, l->prev, p.left, &h);
        spm_try_pair(tk, buf, sym, p.left, l->next, &h);
    }
    if (h.oom)
        goto oom;
    for (int32_t i = ns ? 0 : -1; i >= 0; i = sym[i].next) {
        int32_t id = lookup(tk, buf + sym[i].start, sym[i].n);
        if (id >= 0) {
            push(out, id);
            continue;
        }
        /* Not a token: byte fallback, one <0xXX> token per byte. */
        for (uint32_t j = 0; j < sym[i].n; j++) {
            uint8_t b = (uint8_t)buf[sym[i].start + j];
            if (tk->byte_token[b] < 0) {
                st = sem_err_set(err, SEM_EUNSUPPORTED,
                                 "tokenizer: the text has byte 0x%02X, which this vocabulary "
                                 "cannot encode (it has no <0x%02X> byte token)",
                                 b, b);
                goto done;
            }
            push(out, tk->byte_token[b]);
        }
    }
    goto done;
oom:
    st = sem_err_set(err, SEM_ENOMEM, "tokenizer: out of memory encoding %zu bytes", n);
done:
    free(buf);
    free(sym);
    free(h.v);
    return st;
}

/* ---------------------------------------------------------------- BPE */

static void bpe_try_pair(const tokenizer *tk, const symbol *sym, int32_t l, int32_t r, heap *h)
{
    if (l < 0 || r < 0 || sym[l].id < 0 || sym[r].id < 0)
        return;
    const merge_slot *m = merge_find(tk, sym[l].id, sym[r].id);
    if (!m)
        return;
    pair p = {-(float)m->rank, l, r, sym[l].n + sym[r].n, m->result};
    heap_push(h, p);
}

typedef struct bpe_work {
    uint8_t *bytes; /* the word's UTF-8 */
    char *enc;      /* the word's byte-level text (ignore_merges only) */
    symbol *sym;
    size_t cap;
    heap h;
} bpe_work;

/* Merges one word given as UTF-8 bytes, llm_tokenizer_bpe_session. */
static void bpe_word(const tokenizer *tk, bpe_work *w, size_t nb, tokvec *out)
{
    symbol *sym = w->sym;
    if (tk->ignore_merges) {
        size_t el = 0;
        for (size_t i = 0; i < nb; i++) {
            uint8_t u[4];
            size_t k = utf8_encode(unicode_byte_to_cp(w->bytes[i]), u);
            memcpy(w->enc + el, u, k);
            el += k;
        }
        int32_t id = lookup(tk, w->enc, el);
        if (id >= 0) {
            push(out, id);
            return;
        }
    }
    for (size_t i = 0; i < nb; i++)
        sym[i] = (symbol){(uint32_t)i, 1, (int32_t)i - 1, i + 1 == nb ? -1 : (int32_t)i + 1,
                          tk->byte_token[w->bytes[i]]};
    w->h.n = 0;
    for (size_t i = 1; i < nb; i++)
        bpe_try_pair(tk, sym, (int32_t)i - 1, (int32_t)i, &w->h);
    while (w->h.n && !w->h.oom) {
        pair p = heap_pop(&w->h);
        symbol *l = &sym[p.left], *r = &sym[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size)
            continue;
        l->n += r->n;
        l->id = p.result;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = p.left;
        bpe_try_pair(tk, sym, l->prev, p.left, &w->h);
        bpe_try_pair(tk, sym, p.left, l->next, &w->h);
    }
    for (int32_t i = nb ? 0 : -1; i >= 0; i = sym[i].next) {
        if (sym[i].id >= 0) {
            push(out, sym[i].id);
            continue;
        }
        /* A byte whose byte-level character is not a token: llama.cpp then
         * looks up each byte of that character's UTF-8 as a token text. */
        uint8_t u[4];
        size_t k = utf8_encode(unicode_byte_to_cp(w->bytes[sym[i].start]), u);
        for (size_t j = 0; j < k; j++) {
            int32_t id = lookup(tk, (const char *)&u[j], 1);
            if (id >= 0)
                push(out, id);
        }
    }
}

/* Tokenizes one raw fragment: pre-tokenize into words, merge each. */
static sem_status bpe_fragment(const tokenizer *tk, const char *s, size_t n, tokvec *out,
                               sem_err *err)
{
    sem_status st = SEM_OK;
    uint32_t *cpts = malloc((n ? n : 1) * sizeof *cpts);
    size_t *lens = NULL, n_words = 0, nc = 0;
    bpe_work w = {0};
    if (!cpts)
        goto oom;
    for (size_t pos = 0; pos < n;) {
        uint32_t c = unicode_decode_lenient((const uint8_t *)s, n, &pos);
        /* llama.cpp cannot re-encode a code point above U+10FFFF (it throws);
         * we treat such a sequence as invalid UTF-8. */
        cpts[nc++] = c > UNICODE_MAX_CODEPOINT ? UNICODE_REPLACEMENT : c;
    }
    st = pretokenizer_split(tk->pre, cpts, nc, &lens, &n_words, err);
    if (st != SEM_OK)
        goto done;
    size_t at = 0;
    for (size_t wi = 0; wi < n_words; wi++) {
        size_t wl = lens[wi];
        if (w.cap < wl * 4) {
            size_t cap = wl * 4 < 64 ? 64 : wl * 4;
            free(w.bytes);
            free(w.enc);
            free(w.sym);
            w.bytes = malloc(cap);
            w.enc = malloc(cap * 2);
            w.sym = malloc(cap * sizeof *w.sym);
            w.cap = cap;
            if (!w.bytes || !w.enc || !w.sym)
                goto oom;
        }
        size_t nb = 0;
        for (size_t i = 0; i < wl; i++)
            nb += utf8_encode(cpts[at + i], w.bytes + nb);
        at += wl;
        bpe_word(tk, &w, nb, out);
        if (w.h.oom)
            goto oom;
    }
    goto done;
oom:
    st = sem_err_set(err, SEM_ENOMEM, "tokenizer: out of memory encoding %zu bytes", n);
done:
    free(cpts);
    free(lens);
    free(w.bytes);
    free(w.enc);
    free(w.sym);
    free(w.h.v);
    return st;
}

/* ---------------------------------------------------------------- partition */

typedef struct frag {
    int32_t token; /* >= 0: a special token; -1: raw text [off, off + len) */
    size_t off, len;
} frag;

typedef struct fragvec {
    frag *v;
    size_t n, cap;
    int oom;
} fragvec;

static void frag_push(fragvec *f, frag x)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        frag *v = realloc(f->v, cap * sizeof *v);
        if (!v) {
            f->oom = 1;
            return;
        }
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = x;
}

/*
 * Splits every raw fragment of `in` at each occurrence of special token id,
 * into `out` (tokenizer_st_partition's inner loop): the text left of a
 * match (minus trailing white space when the token has LSTRIP), the token,
 * and the search goes on right of it (minus leading white space when the
 * token has RSTRIP).
 */
static void cut_token(const tokenizer *tk, const char *text, int32_t id, const fragvec *in,
                      fragvec *out)
{
    const char *t = text_of(tk, id);
    size_t tl = tk->tok[id].text_len;
    uint32_t attr = tk->tok[id].attr;
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        frag f = in->v[i];
        if (f.token >= 0) {
            frag_push(out, f);
            continue;
        }
        size_t off = f.off, len = f.len;
        int any = 0;
        while (len > 0) {
            const char *p = memmem(text + off, len, t, tl);
            if (!p)
                break;
            size_t m = (size_t)(p - text);
            any = 1;
            if (m > off) {
                size_t ll = m - off;
                if (attr & TOKEN_ATTR_LSTRIP)
                    while (ll > 0 && c_isspace(text[off + ll - 1]))
                        ll--;
                if (ll > 0)
                    frag_push(out, (frag){-1, off, ll});
            }
            frag_push(out, (frag){id, 0, 0});
            size_t end = m + tl;
            if (end >= off + len) {
                len = 0;
                break;
            }
            size_t rl = off + len - end;
            off = end;
            len = rl;
            if (attr & TOKEN_ATTR_RSTRIP)
                while (len > 0 && c_isspace(text[off])) {
                    off++;
                    len--;
                }
        }
        if (!any)
            frag_push(out, f);
        else if (len > 0)
            frag_push(out, (frag){-1, off, len});
    }
}

static sem_status partition(const tokenizer *tk, const char *text, size_t len, int parse_special,
                            fragvec *frags, sem_err *err)
{
    frag_push(frags, (frag){-1, 0, len});
    if (!tk->n_special || frags->oom)
        return frags->oom ? sem_err_set(err, SEM_ENOMEM, "tokenizer: out of memory") : SEM_OK;
    /* Which special tokens occur anywhere in the text. */
    uint8_t *seen = calloc((tk->n_special + 7) / 8, 1);
    fragvec other = {0};
    sem_status st = SEM_OK;
    if (!seen)
        goto oom;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)text[i];
        if (!(tk->first_byte[b >> 3] & (1u << (b & 7))))
            continue;
        int32_t node = 0;
        for (size_t j = i; j < len; j++) {
            node = trie_child(tk, node, (uint8_t)text[j]);
            if (node < 0)
                break;
            int32_t k = tk->trie_term[node];
            if (k >= 0)
                seen[k >> 3] |= (uint8_t)(1u << (k & 7));
        }
    }
    for (size_t k = 0; k < tk->n_special; k++) {
        if (!(seen[k >> 3] & (1u << (k & 7))))
            continue;
        int32_t id = tk->special[k];
        if (!parse_special && (tk->tok[id].attr & (TOKEN_ATTR_CONTROL | TOKEN_ATTR_UNKNOWN)))
            continue; /* control and unknown tokens only when parsing special text */
        cut_token(tk, text, id, frags, &other);
        if (other.oom)
            goto oom;
        fragvec t = *frags;
        *frags = other;
        other = t;
    }
    goto done;
oom:
    st = sem_err_set(err, SEM_ENOMEM, "tokenizer: out of memory partitioning %zu bytes", len);
done:
    free(seen);
    free(other.v);
    return st;
}

/* ---------------------------------------------------------------- encode */

sem_status tokenizer_encode(const tokenizer *tk, const char *text, size_t len, int add_special,
                            int parse_special, int32_t **out, size_t *n_out, sem_err *err)
{
    *out = NULL;
    *n_out = 0;
    if (!tk || (!text && len))
        return sem_err_set(err, SEM_EINVAL, "tokenizer_encode: %s is NULL", tk ? "text" : "tokenizer");
    if (len > (size_t)INT32_MAX / 4)
        return sem_err_set(err, SEM_ETOOLARGE,
                           "tokenizer_encode: the text is %zu bytes; at most %d are accepted", len,
                           INT32_MAX / 4);
    tokvec v = {0};
    fragvec frags = {0};
    sem_status st = SEM_OK;
    if (len)
        st = partition(tk, text, len, parse_special, &frags, err);
    if (st != SEM_OK)
        goto done;
    if (add_special && tk->add_bos)
        push(&v, tk->bos);
    int prev_special = 1; /* SPM: the first fragment gets the space prefix */
    for (size_t i = 0; i < frags.n && st == SEM_OK; i++) {
        const frag *f = &frags.v[i];
        if (f->token >= 0) {
            push(&v, f->token);
            prev_special = 1;
            continue;
        }
        if (tk->is_bpe)
            st = bpe_fragment(tk, text + f->off, f->len, &v, err);
        else
            st = spm_fragment(tk, text + f->off, f->len, tk->add_space_prefix && prev_special, &v,
                              err);
        prev_special = 0;
    }
    if (st != SEM_OK)
        goto done;
    if (add_special && tk->add_eos)
        push(&v, tk->eos);
    if (!v.oom && !v.v) { /* zero tokens: still hand back an allocation */
        v.v = malloc(sizeof *v.v);
        v.oom = !v.v;
    }
    if (v.oom) {
        st = sem_err_set(err, SEM_ENOMEM, "tokenizer: out of memory encoding %zu bytes", len);
        goto done;
    }
    *out = v.v;
    *n_out = v.n;
    v.v = NULL;
done:
    free(v.v);
    free(frags.v);
    return st;
}

/* ---------------------------------------------------------------- pieces and decode */

static int valid_id(const tokenizer *tk, int32_t id)
{
    return id >= 0 && (size_t)id < tk->n_vocab;
}

const char *tokenizer_piece(const tokenizer *tk, int32_t id, size_t *len)
{
    if (!tk || !valid_id(tk, id)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = tk->tok[id].piece_len;
    return tk->pieces + tk->tok[id].piece_off;
}

const char *tokenizer_token_text(const tokenizer *tk, int32_t id, size_t *len)
{
    if (!tk || !valid_id(tk, id)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = tk->tok[id].text_len;
    return text_of(tk, id);
}

/* llama.cpp's clean_spaces passes, in place; returns the new length. */
size_t tokenizer_clean_text(char *text, size_t total)
{
    /* first pass: " ?", " !", " .", " ," lose the space */
    size_t total1 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total1; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            total--;
        text[total++] = x;
    }
    /* second pass: " ' " becomes "'" */
    size_t total2 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total2; i++) {
        char x = text[i];
        if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
            total--;
            text[++i] = '\0';
        }
        text[total++] = x;
    }
    /* third pass: " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it) */
    size_t total3 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total3; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
            char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm')
                total--;
            else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
                char x2 = text[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e'))
                    total--;
            }
        }
        text[total++] = x;
    }
    return total;
}

sem_status tokenizer_decode(const tokenizer *tk, const int32_t *ids, size_t n, int remove_special,
                            int unparse_special, char **out, size_t *out_len, sem_err *err)
{
    *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!tk || (!ids && n))
        return sem_err_set(err, SEM_EINVAL, "tokenizer_decode: %s is NULL", tk ? "ids" : "tokenizer");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!valid_id(tk, ids[i]))
            return sem_err_set(err, SEM_EINVAL,
                               "tokenizer_decode: token id %d (at index %zu) is not in the "
                               "vocabulary of %zu tokens",
                               ids[i], i, tk->n_vocab);
        total += tk->tok[ids[i]].piece_len;
    }
    char *buf = malloc(total + 1);
    if (!buf)
        return sem_err_set(err, SEM_ENOMEM, "tokenizer_decode: out of memory (%zu bytes)", total);
    int remove_space = tk->add_space_prefix;
    if (remove_special && tk->add_bos && n > 0 && ids[0] == tk->bos) {
        remove_space = 0;
        ids++;
        n--;
    }
    if (remove_special && tk->add_eos && n > 0 && ids[n - 1] == tk->eos)
        n--;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const token_info *t = &tk->tok[ids[i]];
        int strip = remove_space;
        remove_space = 0;
        if (!unparse_special && (t->attr & (TOKEN_ATTR_UNKNOWN | TOKEN_ATTR_CONTROL)))
            continue;
        const char *p = tk->pieces + t->piece_off;
        size_t pl = t->piece_len;
        if (strip && pl && p[0] == ' ') {
            p++;
            pl--;
        }
        memcpy(buf + len, p, pl);
        len += pl;
    }
    if (tk->clean_spaces)
        len = tokenizer_clean_text(buf, len);
    buf[len] = '\0';
    *out = buf;
    if (out_len)
        *out_len = len;
    return SEM_OK;
}

/* ---------------------------------------------------------------- getters */

size_t tokenizer_n_vocab(const tokenizer *tk) { return tk->n_vocab; }
int32_t tokenizer_bos(const tokenizer *tk) { return tk->bos; }
int32_t tokenizer_eos(const tokenizer *tk) { return tk->eos; }
int32_t tokenizer_eot(const tokenizer *tk) { return tk->eot; }
int32_t tokenizer_unk(const tokenizer *tk) { return tk->unk; }
int32_t tokenizer_pad(const tokenizer *tk) { return tk->pad; }
int32_t tokenizer_sep(const tokenizer *tk) { return tk->sep; }
int32_t tokenizer_nl(const tokenizer *tk) { return tk->nl; }
int tokenizer_add_bos(const tokenizer *tk) { return tk->add_bos; }
int tokenizer_add_eos(const tokenizer *tk) { return tk->add_eos; }
int tokenizer_add_space_prefix(const tokenizer *tk) { return tk->add_space_prefix; }
int tokenizer_clean_spaces(const tokenizer *tk) { return tk->clean_spaces; }
const char *tokenizer_kind(const tokenizer *tk) { return tk->is_bpe ? "bpe" : "spm"; }
const char *tokenizer_pre(const tokenizer *tk) { return tk->pre_name; }

int tokenizer_is_eog(const tokenizer *tk, int32_t id)
{
    size_t lo = 0, hi = tk->n_eog;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tk->eog[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < tk->n_eog && tk->eog[lo] == id;
}

int tokenizer_is_control(const tokenizer *tk, int32_t id)
{
    return valid_id(tk, id) && (tk->tok[id].attr & TOKEN_ATTR_CONTROL) != 0;
}

uint32_t tokenizer_token_attr(const tokenizer *tk, int32_t id)
{
    return valid_id(tk, id) ? tk->tok[id].attr : 0;
}

void tokenizer_free(tokenizer *tk)
{
    if (!tk)
        return;
    pretokenizer_free(tk->pre);
    free(tk->tok);
    free(tk->texts);
    free(tk->pieces);
    free(tk->index);
    free(tk->merges);
    free(tk->eog);
    free(tk->special);
    free(tk->trie);
    free(tk->trie_term);
    free(tk);
}

/* ---------------------------------------------------------------- loading */

/* Reads an optional bool key: absent leaves *v, another type is corrupt. */
static sem_status opt_bool(const gguf_file *f, const char *key, int *v, sem_err *err)
{
    int b = 0;
    sem_status st = gguf_get_bool(f, key, &b, err);
    if (st == SEM_ENOTFOUND) {
        sem_err_clear(err);
        return SEM_OK;
    }
    if (st == SEM_OK)
        *v = b;
    return st;
}

static sem_status load_kind(tokenizer *tk, const gguf_file *f, sem_err *err)
{
    char *model = NULL, *pre = NULL;
    sem_status st = gguf_get_cstr(f, KEY_PREFIX "model", &model, err);
    if (st == SEM_ENOTFOUND)
        return sem_err_set(err, SEM_ECORRUPT,
                           "tokenizer: %s: key '" KEY_PREFIX "model' is missing; the file has no "
                           "vocabulary",
                           gguf_name(f));
    if (st != SEM_OK)
        return st;
    st = gguf_get_cstr(f, KEY_PREFIX "pre", &pre, err);
    if (st == SEM_ENOTFOUND) {
        sem_err_clear(err);
        st = SEM_OK;
    }
    if (st != SEM_OK)
        goto done;
    if (strcmp(model, "llama") == 0) {
        tk->is_bpe = 0;
        tk->bos = 1;
        tk->eos = 2;
        tk->unk = 0;
        tk->add_space_prefix = 1;
        tk->clean_spaces = 0;
        tk->add_bos = 1;
        tk->add_eos = 0;
        /* SPM vocabularies have no pre-tokenizer; llama.cpp ignores the key. */
        snprintf(tk->pre_name, sizeof tk->pre_name, "%s", pre && *pre ? pre : "default");
    } else if (strcmp(model, "gpt2") == 0) {
        tk->is_bpe = 1;
        tk->bos = 11;
        tk->eos = 11;
        tk->unk = -1;
        st = pretokenizer_create(pre, &tk->pre, err);
        if (st != SEM_OK) {
            sem_err_wrap(err, "tokenizer: %s", gguf_name(f));
            goto done;
        }
        snprintf(tk->pre_name, sizeof tk->pre_name, "%s", pretokenizer_name(tk->pre));
        pretokenizer_traits tr = pretokenizer_get_traits(tk->pre);
        tk->add_space_prefix = 0;
        tk->clean_spaces = tr.clean_spaces;
        tk->ignore_merges = tr.ignore_merges;
        if (tr.add_bos)
            tk->add_bos = 1;
        if (tr.bos_none)
            tk->bos = -1;
    } else {
        st = sem_err_set(err, SEM_EUNSUPPORTED,
                         "tokenizer: %s: " KEY_PREFIX "model = '%s' is not supported (supported: "
                         "'llama' (SentencePiece), 'gpt2' (byte-level BPE))",
                         gguf_name(f), model);
        goto done;
    }
    st = opt_bool(f, KEY_PREFIX "add_space_prefix", &tk->add_space_prefix, err);
done:
    free(model);
    free(pre);
    return st;
}

static sem_status load_tokens(tokenizer *tk, const gguf_file *f, sem_err *err)
{
    gguf_str *words = NULL;
    uint64_t n = 0;
    sem_status st = gguf_get_str_array(f, KEY_PREFIX "tokens", &words, &n, err);
    if (st == SEM_ENOTFOUND)
        return sem_err_set(err, SEM_ECORRUPT, "tokenizer: %s: key '" KEY_PREFIX "tokens' is missing",
                           gguf_name(f));
    if (st != SEM_OK)
        return st;
    if (n == 0 || n > (uint64_t)INT32_MAX / 2) {
        free(words);
        return sem_err_set(err, SEM_ECORRUPT, "tokenizer: %s: key '" KEY_PREFIX "tokens' has %llu "
                           "entries; expected 1 to %d", gguf_name(f), (unsigned long long)n,
                           INT32_MAX / 2);
    }
    tk->n_vocab = (size_t)n;

    /* Scores: float32 (or int32) per token, optional. */
    const void *scores = NULL;
    gguf_value_type score_type = GGUF_FLOAT32;
    uint64_t ns = 0;
    const gguf_kv *kv = gguf_find_kv(f, KEY_PREFIX "scores");
    if (kv) {
        score_type = kv->type == GGUF_ARRAY && kv->arr_type == GGUF_INT32 ? GGUF_INT32 : GGUF_FLOAT32;
        st = gguf_get_array(f, KEY_PREFIX "scores", score_type, &scores, &ns, err);
        if (st != SEM_OK)
            goto done;
        if (ns != n) {
            st = sem_err_set(err, SEM_ECORRUPT,
                             "tokenizer: %s: key '" KEY_PREFIX "scores' has %llu entries but '"
                             KEY_PREFIX "tokens' has %llu",
                             gguf_name(f), (unsigned long long)ns, (unsigned long long)n);
            goto done;
        }
    }
    /* Token types: int32 per token, optional. */
    const void *types = NULL;
    uint64_t nt = 0;
    if (gguf_find_kv(f, KEY_PREFIX "token_type")) {
        st = gguf_get_array(f, KEY_PREFIX "token_type", GGUF_INT32, &types, &nt, err);
        if (st != SEM_OK)
            goto done;
        if (nt != n) {
            st = sem_err_set(err, SEM_ECORRUPT,
                             "tokenizer: %s: key '" KEY_PREFIX "token_type' has %llu entries but '"
                             KEY_PREFIX "tokens' has %llu",
                             gguf_name(f), (unsigned long long)nt, (unsigned long long)n);
            goto done;
        }
    }

    size_t bytes = 0;
    for (uint64_t i = 0; i < n; i++)
        bytes += words[i].len ? words[i].len : 24; /* room for "[EMPTY_i]" */
    if (bytes > UINT32_MAX) {
        st = sem_err_set(err, SEM_ECORRUPT, "tokenizer: %s: the token texts take %zu bytes",
                         gguf_name(f), bytes);
        goto done;
    }
    tk->tok = calloc(n, sizeof *tk->tok);
    tk->texts = malloc(bytes ? bytes : 1);
    tk->index_mask = pow2_at_least(n * 2) - 1;
    tk->index = calloc(tk->index_mask + 1, sizeof *tk->index);
    if (!tk->tok || !tk->texts || !tk->index) {
        st = sem_err_set(err, SEM_ENOMEM, "tokenizer: out of memory loading %llu tokens",
                         (unsigned long long)n);
        goto done;
    }
    size_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        token_info *t = &tk->tok[i];
        t->text_off = (uint32_t)off;
        if (words[i].len) {
            memcpy(tk->texts + off, words[i].ptr, words[i].len);
            t->text_len = (uint32_t)words[i].len;
        } else { /* llama.cpp renames empty tokens */
            t->text_len = (uint32_t)snprintf(tk->texts + off, 24, "[EMPTY_%llu]",
                                             (unsigned long long)i);
        }
        off += t->text_len;
        if (scores)
            t->score = (float)gguf_array_f64(score_type, scores, i);
        t->attr = TOKEN_ATTR_NORMAL;
        if (types) {
            int64_t ty = gguf_array_i64(GGUF_INT32, types, i);
            static const uint32_t attr_of_type[] = {
                TOKEN_ATTR_UNDEFINED, TOKEN_ATTR_NORMAL,       TOKEN_ATTR_UNKNOWN, TOKEN_ATTR_CONTROL,
                TOKEN_ATTR_USER_DEFINED, TOKEN_ATTR_UNUSED, TOKEN_ATTR_BYTE};
            if (ty < 0 || ty > 6) {
                st = sem_err_set(err, SEM_ECORRUPT,
                                 "tokenizer: %s: key '" KEY_PREFIX "token_type' gives token %llu "
                                 "type %lld; valid types are 0 (undefined), 1 (normal), 2 "
                                 "(unknown), 3 (control), 4 (user-defined), 5 (unused), 6 (byte)",
                                 gguf_name(f), (unsigned long long)i, (long long)ty);
                goto done;
            }
            t->attr = attr_of_type[ty];
        }
        int32_t dup = index_insert(tk, (int32_t)i);
        if (dup >= 0) {
            st = sem_err_set(err, SEM_ECORRUPT,
                             "tokenizer: %s: key '" KEY_PREFIX "tokens' has the text '%.*s' twice "
                             "(ids %d and %llu)",
                             gguf_name(f), (int)(t->text_len > 64 ? 64 : t->text_len),
                             tk->texts + t->text_off, dup, (unsigned long long)i);
            goto done;
        }
    }
done:
    free(words);
    return st;
}

static sem_status load_merges(tokenizer *tk, const gguf_file *f, sem_err *err)
{
    gguf_str *m = NULL;
    uint64_t n = 0;
    sem_status st = gguf_get_str_array(f, KEY_PREFIX "merges", &m, &n, err);
    if (st == SEM_ENOTFOUND)
        return sem_err_set(err, SEM_ECORRUPT,
                           "tokenizer: %s: key '" KEY_PREFIX "merges' is missing (a gpt2 "
                           "vocabulary needs its BPE merges)",
                           gguf_name(f));
    if (st != SEM_OK)
        return st;
    tk->merges_mask = pow2_at_least(n * 2 + 1) - 1;
    tk->merges = calloc(tk->merges_mask + 1, sizeof *tk->merges);
    if (!tk->merges) {
        free(m);
        return sem_err_set(err, SEM_ENOMEM, "tokenizer: out of memory loading %llu merges",
                           (unsigned long long)n);
    }
    for (uint64_t i = 0; i < n && st == SEM_OK; i++) {
        const char *s = m[i].ptr;
        size_t len = m[i].len;
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp) {
            st = sem_err_set(err, SEM_ECORRUPT,
                             "tokenizer: %s: key '" KEY_PREFIX "merges' entry %llu ('%.*s') is not "
                             "two tokens separated by a space",
                             gguf_name(f), (unsigned long long)i, (int)(len > 64 ? 64 : len), s);
            break;
        }
        size_t la = (size_t)(sp - s), lb = len - la - 1;
        int32_t a = lookup(tk, s, la), b = lookup(tk, sp + 1, lb);
        int32_t r = lookup2(tk, s, la, sp + 1, lb);
        if (a < 0 || b < 0) {
            st = sem_err_set(err, SEM_ECORRUPT,
                             "tokenizer: %s: key '" KEY_PREFIX "merges' entry %llu ('%.*s') names "
                             "'%.*s', which is not in '" KEY_PREFIX "tokens'",
                             gguf_name(f), (unsigned long long)i, (int)(len > 64 ? 64 : len), s,
                             a < 0 ? (int)(la > 64 ? 64 : la) : (int)(lb > 64 ? 64 : lb),
                             a < 0 ? s : sp + 1);
            break;
        }
        if (r < 0) {
            st = sem_err_set(err, SEM_ECORRUPT,
                             "tokenizer: %s: key '" KEY_PREFIX "merges' entry %llu ('%.*s') makes "
                             "'%.*s%.*s', which is not in '" KEY_PREFIX "tokens'",
                             gguf_name(f), (unsigned long long)i, (int)(len > 64 ? 64 : len), s,
                             (int)(la > 32 ? 32 : la), s, (int)(lb > 32 ? 32 : lb), sp + 1);
            break;
        }
        uint64_t key = ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(b + 1);
        for (size_t j = (size_t)mix64(key) & tk->merges_mask;; j = (j + 1) & tk->merges_mask) {
            merge_slot *sl = &tk->merges[j];
            if (sl->key == key)
                break; /* a repeated pair keeps its first (lowest) rank */
            if (!sl->key) {
                *sl = (merge_slot){key, (int32_t)i, r};
                break;
            }
        }
    }
    free(m);
    return st;
}

/* The ids of the special-token keys, in llama.cpp's order. */
static sem_status load_special_ids(tokenizer *tk, const gguf_file *f, sem_err *err)
{
    struct {
        const char *key;
        int32_t *id;
    } keys[] = {
        {KEY_PREFIX "bos_token_id", &tk->bos},       {KEY_PREFIX "eos_token_id", &tk->eos},
        {KEY_PREFIX "eot_token_id", &tk->eot},       {KEY_PREFIX "eom_token_id", &tk->eom},
        {KEY_PREFIX "unknown_token_id", &tk->unk},   {KEY_PREFIX "seperator_token_id", &tk->sep},
        {KEY_PREFIX "padding_token_id", &tk->pad},   {KEY_PREFIX "mask_token_id", &tk->mask},
        {KEY_PREFIX "fim_pre_token_id", &tk->fim_pre}, {KEY_PREFIX "fim_suf_token_id", &tk->fim_suf},
        {KEY_PREFIX "fim_mid_token_id", &tk->fim_mid}, {KEY_PREFIX "fim_pad_token_id", &tk->fim_pad},
        {KEY_PREFIX "fim_rep_token_id", &tk->fim_rep}, {KEY_PREFIX "fim_sep_token_id", &tk->fim_sep},
        {KEY_PREFIX "prefix_token_id", &tk->fim_pre}, {KEY_PREFIX "suffix_token_id", &tk->fim_suf},
        {KEY_PREFIX "middle_token_id", &tk->fim_mid},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int32_t *id = keys[i].id;
        if (*id >= 0 && (size_t)*id >= tk->n_vocab)
            *id = -1; /* a default outside a small vocabulary: none */
        const gguf_kv *kv = gguf_find_kv(f, keys[i].key);
        if (!kv)
            continue;
        uint32_t probe = 0;
        int64_t v = gguf_array_i64(kv->type, kv->data, 0);
        if (kv->type == GGUF_INT32 || kv->type == GGUF_INT64 || kv->type == GGUF_UINT64 ||
            kv->type == GGUF_UINT32 || kv->type == GGUF_INT16 || kv->type == GGUF_UINT16 ||
            kv->type == GGUF_INT8 || kv->type == GGUF_UINT8) {
            /* Converters write -1 (or 0xFFFFFFFF) for "no such token";
             * llama.cpp then keeps the default. */
            if (v == -1 || v == (int64_t)UINT32_MAX)
                continue;
        } else {
            return gguf_get_u32(f, keys[i].key, &probe, err); /* names the wrong type */
        }
        if (v < 0 || (uint64_t)v >= tk->n_vocab)
            return sem_err_set(err, SEM_ECORRUPT,
                               "tokenizer: %s: key '%s' = %lld is out of range (the vocabulary "
                               "has %zu tokens)",
                               gguf_name(f), keys[i].key, (long long)v, tk->n_vocab);
        *id = (int32_t)v;
    }
    sem_status st = opt_bool(f, KEY_PREFIX "add_bos_token", &tk->add_bos, err);
    if (st == SEM_OK)
        st = opt_bool(f, KEY_PREFIX "add_eos_token", &tk->add_eos, err);
    if (st == SEM_OK)
        st = opt_bool(f, KEY_PREFIX "add_sep_token", &tk->add_sep, err);
    if (st != SEM_OK)
        return st;
    const struct {
        int add;
        int32_t id;
        const char *what;
    } need[] = {{tk->add_bos, tk->bos, "add_bos_token is true, but bos_token_id"},
                {tk->add_eos, tk->eos, "add_eos_token is true, but eos_token_id"},
                {tk->add_sep, tk->sep, "add_sep_token is true, but seperator_token_id"}};
    for (size_t i = 0; i < 3; i++)
        if (need[i].add && need[i].id < 0)
            return sem_err_set(err, SEM_ECORRUPT, "tokenizer: %s: " KEY_PREFIX "%s is not set",
                               gguf_name(f), need[i].what);
    return SEM_OK;
}

/* Token texts llama.cpp recognises (llama_vocab::impl::load). */
static const char *const eot_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "<end_of_utterance>", NULL};
static const char *const eom_texts[] = {"<|eom_id|>", NULL};
static const char *const fim_pre_texts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
    "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const fim_suf_texts[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>",
    "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const fim_mid_texts[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
    "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL};
static const char *const fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
                                            "[PAD]", NULL};
static const char *const fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                            "<reponame>", NULL};
static const char *const fim_sep_texts[] = {"<|file_sep|>", NULL};
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[", NULL};

static int32_t lookup_cstr(const tokenizer *tk, const char *s) { return lookup(tk, s, strlen(s)); }

/*
 * When the file does not name it, the first text of `texts` found in the
 * vocabulary gives the id, and that token becomes a control token.
 * (llama.cpp takes the first match in its hash map's iteration order; the
 * list order is deterministic and agrees on every vocabulary we test.)
 */
static void detect_by_text(tokenizer *tk, int32_t *id, const char *const *texts)
{
    if (*id >= 0)
        return;
    for (const char *const *t = texts; *t; t++) {
        int32_t x = lookup_cstr(tk, *t);
        if (x >= 0) {
            *id = x;
            tk->tok[x].attr |= TOKEN_ATTR_CONTROL;
            return;
        }
    }
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static sem_status build_eog(tokenizer *tk)
{
    size_t cap = 64, n = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v)
        return SEM_ENOMEM;
    int32_t fixed[] = {tk->fim_pad, tk->fim_rep, tk->fim_sep};
    for (size_t i = 0; i < 3; i++)
        if (fixed[i] >= 0)
            v[n++] = fixed[i];
    for (const char *const *t = eog_texts; *t; t++) {
        int32_t x = lookup_cstr(tk, *t);
        if (x < 0)
            continue;
        tk->tok[x].attr |= TOKEN_ATTR_CONTROL;
        if (n == cap) {
            int32_t *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) {
                free(v);
                return SEM_ENOMEM;
            }
            v = nv;
        }
        v[n++] = x;
    }
    /* gpt-oss: these are always rendered */
    static const char *const user_texts[] = {"<|channel|>", "<|message|>", "<|start|>",
                                             "<|constrain|>", NULL};
    for (const char *const *t = user_texts; *t; t++) {
        int32_t x = lookup_cstr(tk, *t);
        if (x >= 0)
            tk->tok[x].attr = TOKEN_ATTR_USER_DEFINED;
    }
    int32_t more[] = {tk->eos, tk->eot, tk->eom};
    for (size_t i = 0; i < 3; i++)
        if (more[i] >= 0)
            v[n++] = more[i]; /* cap >= 64 > 3 + 22 + 3 */
    qsort(v, n, sizeof *v, cmp_i32);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || v[u - 1] != v[i])
            v[u++] = v[i];
    n = u;
    tk->eog = v;
    tk->n_eog = n;
    /* o200k_harmony and solar-open: "<|end|>" is not an end of generation
     * when "<|return|>"/"<|call|>" (or "<|calls|>"/"<|flush|>") are. */
    int has_return = 0, has_call = 0, has_flush = 0;
    int32_t end_id = -1, s_id = -1;
    int has_tool_response = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = text_of(tk, v[i]);
        size_t l = tk->tok[v[i]].text_len;
#define IS(lit) (l == sizeof lit - 1 && memcmp(t, lit, l) == 0)
        if (IS("<|return|>"))
            has_return = 1;
        else if (IS("<|call|>") || IS("<|calls|>"))
            has_call = 1;
        else if (IS("<|flush|>"))
            has_flush = 1;
        else if (IS("<|end|>"))
            end_id = v[i];
        if (IS("<|tool_response>"))
            has_tool_response = 1;
        else if (IS("</s>"))
            s_id = v[i];
#undef IS
    }
    int32_t drop[2] = {-1, -1};
    if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush))) {
        drop[0] = end_id;
        tk->tok[end_id].attr = TOKEN_ATTR_USER_DEFINED;
    }
    if (has_tool_response && s_id >= 0) {
        drop[1] = s_id;
        tk->tok[s_id].attr = TOKEN_ATTR_NORMAL;
    }
    u = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] != drop[0] && v[i] != drop[1])
            v[u++] = v[i];
    tk->n_eog = u;
    return SEM_OK;
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const tokenizer *tk = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = tk->tok[x].text_len, ly = tk->tok[y].text_len;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return (x > y) - (x < y);
}

static sem_status build_special(tokenizer *tk)
{
    size_t n = 0;
    for (size_t i = 0; i < tk->n_vocab; i++)
        if (tk->tok[i].attr & (TOKEN_ATTR_CONTROL | TOKEN_ATTR_USER_DEFINED | TOKEN_ATTR_UNKNOWN))
            n++;
    tk->special = malloc((n ? n : 1) * sizeof *tk->special);
    if (!tk->special)
        return SEM_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < tk->n_vocab; i++)
        if (tk->tok[i].attr & (TOKEN_ATTR_CONTROL | TOKEN_ATTR_USER_DEFINED | TOKEN_ATTR_UNKNOWN))
            tk->special[k++] = (int32_t)i;
    tk->n_special = n;
    /* llama.cpp sorts by length only (std::sort, unstable); equal lengths
     * keep id order here. */
    qsort_r(tk->special, n, sizeof *tk->special, cmp_special, tk);
    return SEM_OK;
}

/* The special-token texts as a trie, for partition(). */
static sem_status build_trie(tokenizer *tk)
{
    size_t bytes = 0;
    for (size_t k = 0; k < tk->n_special; k++)
        bytes += tk->tok[tk->special[k]].text_len;
    tk->trie_term = malloc((bytes + 1) * sizeof *tk->trie_term);
    tk->trie_mask = pow2_at_least(bytes * 2 + 1) - 1;
    tk->trie = calloc(tk->trie_mask + 1, sizeof *tk->trie);
    if (!tk->trie_term || !tk->trie)
        return SEM_ENOMEM;
    tk->trie_nodes = 1;
    tk->trie_term[0] = -1;
    memset(tk->first_byte, 0, sizeof tk->first_byte);
    for (size_t k = 0; k < tk->n_special; k++) {
        int32_t id = tk->special[k];
        const uint8_t *t = (const uint8_t *)text_of(tk, id);
        uint32_t len = tk->tok[id].text_len;
        tk->first_byte[t[0] >> 3] |= (uint8_t)(1u << (t[0] & 7));
        int32_t node = 0;
        for (uint32_t j = 0; j < len; j++) {
            uint64_t key = (((uint64_t)node << 8) | t[j]) + 1;
            size_t i = (size_t)mix64(key) & tk->trie_mask;
            while (tk->trie[i].key && tk->trie[i].key != key)
                i = (i + 1) & tk->trie_mask;
            if (!tk->trie[i].key) {
                tk->trie[i].key = key;
                tk->trie[i].child = (int32_t)tk->trie_nodes;
                tk->trie_term[tk->trie_nodes++] = -1;
            }
            node = tk->trie[i].child;
        }
        tk->trie_term[node] = (int32_t)k;
    }
    return SEM_OK;
}

/* llama.cpp's token_to_byte: the hex digits at text[3..5) ("<0xAB>"). */
static uint8_t byte_of_text(const char *t, size_t len)
{
    unsigned v = 0;
    for (size_t i = 3; i < 5 && i < len; i++) {
        char c = t[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d == 16)
            break;
        v = v * 16 + d;
    }
    return (uint8_t)v;
}

/* Every token's piece, llama_token_to_piece(special = true). */
static sem_status build_pieces(tokenizer *tk, const gguf_file *f, sem_err *err)
{
    strbuf b = {0};
    for (size_t id = 0; id < tk->n_vocab; id++) {
        token_info *t = &tk->tok[id];
        const char *text = text_of(tk, (int32_t)id);
        size_t start = b.len;
        if (t->attr & (TOKEN_ATTR_UNKNOWN | TOKEN_ATTR_CONTROL | TOKEN_ATTR_USER_DEFINED)) {
            strbuf_append(&b, text, t->text_len);
        } else if (t->attr & TOKEN_ATTR_NORMAL) {
            if (!tk->is_bpe) { /* U+2581 -> space */
                for (size_t i = 0; i < t->text_len;) {
                    if (i + 3 <= t->text_len && memcmp(text + i, "\xe2\x96\x81", 3) == 0) {
                        strbuf_append(&b, " ", 1);
                        i += 3;
                    } else {
                        strbuf_append(&b, text + i, 1);
                        i++;
                    }
                }
            } else { /* byte-level characters -> bytes */
                for (size_t pos = 0; pos < t->text_len;) {
                    uint32_t cp = unicode_decode_lenient((const uint8_t *)text, t->text_len, &pos);
                    int byte = unicode_cp_to_byte(cp);
                    if (byte >= 0) {
                        uint8_t c = (uint8_t)byte;
                        strbuf_append(&b, (const char *)&c, 1);
                        continue;
                    }
                    /* llama_decode_text's marker for a character outside the map */
                    uint8_t u[4];
                    size_t k = utf8_encode(cp, u);
                    char hex[16];
                    strbuf_append(&b, "[UNK_BYTE_0x", 12);
                    for (size_t j = 0; j < k; j++) {
                        snprintf(hex, sizeof hex, "%02x", u[j]);
                        strbuf_append(&b, hex, 2);
                    }
                    strbuf_append(&b, text, t->text_len);
                    strbuf_append(&b, "]", 1);
                }
            }
        } else if (t->attr & TOKEN_ATTR_BYTE) {
            if (t->text_len < 3) {
                strbuf_free(&b);
                return sem_err_set(err, SEM_ECORRUPT,
                                   "tokenizer: %s: key '" KEY_PREFIX "token_type' makes token %zu "
                                   "('%.*s') a byte token, but its text is not <0xXX>",
                                   gguf_name(f), id, (int)t->text_len, text);
            }
            uint8_t c = byte_of_text(text, t->text_len);
            strbuf_append(&b, (const char *)&c, 1);
        }
        /* unused and undefined tokens have an empty piece */
        t->piece_off = (uint32_t)start;
        t->piece_len = (uint32_t)(b.len - start);
        if (b.len > UINT32_MAX) {
            strbuf_free(&b);
            return sem_err_set(err, SEM_ECORRUPT, "tokenizer: %s: the pieces exceed 4 GiB",
                               gguf_name(f));
        }
    }
    if (b.oom) {
        strbuf_free(&b);
        return sem_err_set(err, SEM_ENOMEM, "tokenizer: out of memory building pieces");
    }
    tk->pieces = b.data ? b.data : malloc(1);
    if (!tk->pieces)
        return sem_err_set(err, SEM_ENOMEM, "tokenizer: out of memory building pieces");
    return SEM_OK;
}

/* An optional string key as a C string in buf ("" when absent or not a string). */
static void opt_str(const gguf_file *f, const char *key, char *buf, size_t cap)
{
    gguf_str s;
    buf[0] = '\0';
    if (gguf_get_str(f, key, &s, NULL) == SEM_OK)
        snprintf(buf, cap, "%.*s", (int)(s.len > cap ? cap : s.len), s.ptr);
}

static void set_attr(tokenizer *tk, const char *text, uint32_t attr, int on)
{
    int32_t id = lookup_cstr(tk, text);
    if (id < 0)
        return; /* llama.cpp throws here; a missing token is simply skipped */
    if (on)
        tk->tok[id].attr |= attr;
    else
        tk->tok[id].attr &= ~attr;
}

/* llama.cpp sets strip attributes for a few models by name. */
static void model_attrs(tokenizer *tk, const gguf_file *f)
{
    char name[256], pre[128], arch[128];
    opt_str(f, "general.name", name, sizeof name);
    opt_str(f, KEY_PREFIX "pre", pre, sizeof pre);
    opt_str(f, "general.architecture", arch, sizeof arch);
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (strstr(pre, "jina-v2-de") || strstr(pre, "jina-v2-es") || strstr(pre, "jina-v2-code") ||
        strstr(arch, "nomic-bert-moe") || strstr(arch, "jina-bert-v3")) {
        set_attr(tk, "<mask>", TOKEN_ATTR_LSTRIP, 1);
    } else if (strstr(name, "phi-3") || strstr(name, "phi3")) {
        for (size_t k = 0; k < tk->n_special; k++)
            tk->tok[tk->special[k]].attr |= TOKEN_ATTR_RSTRIP;
        set_attr(tk, "</s>", TOKEN_ATTR_RSTRIP, 1);
        set_attr(tk, "<unk>", TOKEN_ATTR_RSTRIP, 0);
        set_attr(tk, "<s>", TOKEN_ATTR_RSTRIP, 0);
        set_attr(tk, "<|endoftext|>", TOKEN_ATTR_RSTRIP, 0);
    } else if (strstr(name, "modern-bert")) {
        set_attr(tk, "[MASK]", TOKEN_ATTR_LSTRIP, 1);
    }
}

tokenizer *tokenizer_load(const gguf_file *f, sem_err *err)
{
    if (!f) {
        sem_err_set(err, SEM_EINVAL, "tokenizer_load: the gguf_file is NULL");
        return NULL;
    }
    tokenizer *tk = calloc(1, sizeof *tk);
    if (!tk) {
        sem_err_set(err, SEM_ENOMEM, "tokenizer: out of memory");
        return NULL;
    }
    tk->bos = tk->eos = tk->eot = tk->eom = tk->unk = tk->sep = tk->pad = tk->mask = -1;
    tk->nl = tk->fim_pre = tk->fim_suf = tk->fim_mid = tk->fim_pad = tk->fim_rep = tk->fim_sep = -1;
    sem_status st = load_kind(tk, f, err);
    if (st == SEM_OK)
        st = load_tokens(tk, f, err);
    if (st == SEM_OK && tk->is_bpe)
        st = load_merges(tk, f, err);
    if (st != SEM_OK)
        goto fail;

    /* byte -> token, for SPM byte fallback and BPE's initial symbols */
    for (int b = 0; b < 256; b++) {
        if (tk->is_bpe) {
            uint8_t u[4];
            size_t k = utf8_encode(unicode_byte_to_cp((uint8_t)b), u);
            tk->byte_token[b] = lookup(tk, (const char *)u, k);
        } else {
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", b);
            tk->byte_token[b] = lookup_cstr(tk, hex);
            if (tk->byte_token[b] < 0) {
                char c = (char)b;
                tk->byte_token[b] = lookup(tk, &c, 1);
            }
        }
    }

    /* The newline token, before the file's special ids are read (as llama.cpp). */
    if (!tk->is_bpe) {
        tk->nl = tk->byte_token['\n'] >= 0 ? tk->byte_token['\n'] : tk->pad;
    } else {
        tokvec v = {0};
        st = bpe_fragment(tk, "\n", 1, &v, err);
        tk->nl = v.n ? v.v[0] : tk->pad;
        free(v.v);
        if (st != SEM_OK)
            goto fail;
    }

    st = load_special_ids(tk, f, err);
    if (st != SEM_OK)
        goto fail;
    detect_by_text(tk, &tk->eot, eot_texts);
    detect_by_text(tk, &tk->eom, eom_texts);
    detect_by_text(tk, &tk->fim_pre, fim_pre_texts);
    detect_by_text(tk, &tk->fim_suf, fim_suf_texts);
    detect_by_text(tk, &tk->fim_mid, fim_mid_texts);
    detect_by_text(tk, &tk->fim_pad, fim_pad_texts);
    detect_by_text(tk, &tk->fim_rep, fim_rep_texts);
    detect_by_text(tk, &tk->fim_sep, fim_sep_texts);
    if (build_eog(tk) != SEM_OK || build_special(tk) != SEM_OK) {
        st = sem_err_set(err, SEM_ENOMEM, "tokenizer: out of memory");
        goto fail;
    }
    st = build_pieces(tk, f, err);
    if (st != SEM_OK)
        goto fail;
    model_attrs(tk, f);
    if (build_trie(tk) != SEM_OK) {
        st = sem_err_set(err, SEM_ENOMEM, "tokenizer: out of memory");
        goto fail;
    }
    return tk;
fail:
    tokenizer_free(tk);
    return NULL;
}
