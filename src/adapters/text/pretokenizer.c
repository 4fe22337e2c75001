/*
 * pretokenizer.c - llama.cpp's BPE pre-tokenizer schemes.
 *
 * Data flow of pretokenizer_split: the input is code points; `segs` starts
 * as one segment covering them all; each regex of the scheme maps `segs` to
 * a finer list; the final list is the words. Regexes run on one of three
 * views of the input, computed once per call:
 *   info[i]      class bits of cpts[i] (letter, number, White_Space) for the
 *                hand-written scanners;
 *   collapsed[i] cpts[i] if ASCII, else 0x0B for White_Space, else the
 *                stand-in of its class (0xD1 number .. 0xD5 symbol, 0xD0
 *                other) - for patterns that use \p{..};
 *   wide[i]      cpts[i], with non-ASCII White_Space replaced by 0x0B - for
 *                patterns without \p{..}.
 * A regex never sees past the segment it splits (its end is the subject
 * end, so `$` and lookaheads stop there), exactly as llama.cpp runs
 * std::regex_iterator per segment.
 */
#include "pretokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 32
#include <pcre2.h>

#include "unicode.h"

/* ---------------------------------------------------------------- schemes */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3                                                                              \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" \
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                               \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" \
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_CJK "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+"

static const char *const re_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL};
static const char *const re_llama3[] = {RE_LLAMA3, NULL};
static const char *const re_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-\xc6\xbf"
    "\xc7\x84-\xca\x93\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-\xcd\xbd"
    "\xcd\xbf\xce\x86\xce\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-"
    "\xd2\x81\xd2\x8a-\xd4\xaf\xd4\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f"
    "\xb5\xe1\x8f\xb8-\xe1\x8f\xbd\xe1\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4"
    "\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5\xb7\xe1\xb5\xb9-\xe1\xb6\x9a\xe1\xb8\x80-\xe1\xbc"
    "\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd"
    "\x90-\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe"
    "\x80-\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf"
    "\x86-\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-\xe1\xbf\x9b\xe1\xbf\xa0-\xe1\xbf"
    "\xac\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87\xe2\x84"
    "\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-\xe2\x84\x9d\xe2\x84\xa4\xe2\x84\xa6\xe2\x84"
    "\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84\xb9\xe2\x84\xbc-\xe2\x84"
    "\xbf\xe2\x85\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1"
    "\xbb\xe2\xb1\xbe-\xe2\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99"
    "\x80-\xea\x99\xad\xea\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e"
    "\x87\xea\x9e\x8b-\xea\x9e\x8e\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac"
    "\x93-\xef\xac\x97\xef\xbc\xa1-\xef\xbc\xba\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-\xf0"
    "\x90\x91\x8f\xf0\x90\x92\xb0-\xf0\x90\x93\x93\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90"
    "\xb2\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-\xf0\x90\xb3\xb2\xf0\x91\xa2\xa0-\xf0\x91\xa3"
    "\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+",
    "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f"
    "\xe3\x80\x80-\xe3\x80\x82]+",
    "\\s+$",
    RE_CJK,
    "\\p{N}+",
    NULL};
static const char *const re_deepseek3[] = {
    "\\p{N}{1,3}",
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?"
    "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_deepseek_coder[] = {
    "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}", NULL};
static const char *const re_falcon[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]", NULL};
static const char *const re_starcoder[] = {"\\p{N}", RE_GPT2, NULL};
static const char *const re_gpt2[] = {RE_GPT2, NULL};
static const char *const re_qwen2[] = {RE_QWEN2, NULL};
static const char *const re_poro[] = {
    " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+",
    NULL};
static const char *const re_viking[] = {
    " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+",
    "\\p{N}", NULL};
static const char *const re_tekken[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?"
    "((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_chameleon[] = {
    "<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2, NULL};
static const char *const re_gpt4o[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|"
    "'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])"
    "([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}"
    "\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_bailingmoe[] = {
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}"
    "\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_seed_coder[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};

typedef struct scheme {
    const char *names; /* space-separated tokenizer.ggml.pre values */
    const char *const *regexes;
    pretokenizer_traits traits; /* clean_spaces, ignore_merges, add_bos, bos_none */
} scheme;

/* Names and settings as in llama.cpp's llama_vocab::impl::load. */
static const scheme schemes[] = {
    {"default", re_default, {1, 0, 0, 0}},
    {"llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2", re_llama3, {1, 1, 1, 0}},
    {"dbrx smaug-bpe", re_llama3, {1, 0, 0, 0}},
    {"glm4 chatglm-bpe", re_llama3, {1, 0, 0, 1}},
    {"deepseek-llm", re_deepseek_llm, {0, 0, 0, 0}},
    {"deepseek-coder", re_deepseek_coder, {0, 0, 0, 0}},
    {"deepseek-v3", re_deepseek3, {0, 0, 0, 0}},
    {"falcon", re_falcon, {1, 0, 0, 0}},
    {"starcoder refact codeshell exaone minerva-7b", re_starcoder, {1, 0, 0, 0}},
    {"command-r smollm", re_starcoder, {0, 0, 0, 0}},
    {"gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de jina-v1-en jina-v2-code "
     "roberta-bpe a.x-4.0 mellum exaone4 mpt olmo jais",
     re_gpt2, {1, 0, 0, 0}},
    {"trillion granite-docling", re_gpt2, {0, 0, 0, 0}},
    {"qwen2 deepseek-r1-qwen hunyuan solar-open grok-2", re_qwen2, {0, 0, 0, 0}},
    {"stablelm2 megrez", re_qwen2, {1, 0, 0, 0}},
    {"poro-chat", re_poro, {0, 0, 0, 0}},
    {"bloom gpt3-finnish", re_poro, {1, 0, 0, 0}},
    {"viking", re_viking, {0, 0, 0, 0}},
    {"tekken", re_tekken, {0, 1, 1, 0}},
    {"chameleon", re_chameleon, {0, 0, 1, 0}},
    {"gpt-4o llama4 minimax-m2", re_gpt4o, {0, 0, 0, 0}},
    {"bailingmoe bailingmoe2 llada-moe", re_bailingmoe, {0, 0, 0, 0}},
    {"seed-coder", re_seed_coder, {0, 0, 0, 0}},
};
#define N_SCHEMES (sizeof schemes / sizeof schemes[0])

/* ---------------------------------------------------------------- compiled form */

typedef enum op_kind {
    OP_GPT2,          /* RE_GPT2, by hand like llama.cpp */
    OP_LLAMA3,        /* RE_LLAMA3, by hand like llama.cpp */
    OP_TRAILING_WS,   /* "\s+$" */
    OP_PCRE_COLLAPSED,/* a pattern with \p{..}, on the collapsed view */
    OP_PCRE_WIDE,     /* a pattern without \p{..}, on the wide view */
} op_kind;

typedef struct op {
    op_kind kind;
    pcre2_code *code;
} op;

struct pretokenizer {
    char name[64];
    pretokenizer_traits traits;
    op ops[8];
    size_t n_ops;
};

static int name_in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

void pretokenizer_supported(char *buf, size_t cap, int primary_only)
{
    size_t used = 0;
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; i < N_SCHEMES; i++) {
        for (const char *p = schemes[i].names; *p;) {
            const char *e = strchr(p, ' ');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            int w = snprintf(buf + used, cap > used ? cap - used : 0, "%s%.*s",
                             used ? ", " : "", (int)len, p);
            if (w > 0)
                used += (size_t)w;
            if (!e || primary_only)
                break;
            p = e + 1;
        }
    }
}

/* \p{..} classes llama.cpp knows, their stand-in unit and ASCII members. */
static const struct {
    const char *name;
    uint32_t standin;
    const char *ascii;
} ucats[] = {
    {"\\p{N}", 0xD1, "0-9"},
    {"\\p{L}", 0xD2, "A-Za-z"},
    {"\\p{P}", 0xD3, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", 0xD4, ""},
    {"\\p{S}", 0xD5, "\\$\\+<->^`\\|"},
    {"\\p{Lu}", 0xD2, "A-Za-z"},
    {"\\p{Ll}", 0xD2, "A-Za-z"},
    {"\\p{Lt}", 0xD2, "A-Za-z"},
    {"\\p{Lm}", 0xD2, "A-Za-z"},
    {"\\p{Lo}", 0xD2, "A-Za-z"},
};
#define N_UCATS (sizeof ucats / sizeof ucats[0])

static int uses_ucat(const char *re)
{
    for (size_t i = 0; i < N_UCATS; i++)
        if (strstr(re, ucats[i].name))
            return 1;
    return 0;
}

/*
 * The collapsed pattern: each known \p{X} becomes [stand-in + ASCII members]
 * (without the brackets inside a class). The same rewrite llama.cpp does;
 * such patterns are ASCII, so bytes are code points.
 */
static size_t collapse_pattern(const char *re, uint32_t *out)
{
    size_t len = strlen(re), n = 0;
    int inside = 0;
    for (size_t i = 0; i < len; i++) {
        char c = re[i];
        if (c == '[' && (i == 0 || re[i - 1] != '\\')) {
            out[n++] = '[';
            inside = 1;
            continue;
        }
        if (inside && c == ']' && re[i - 1] != '\\') {
            out[n++] = ']';
            inside = 0;
            continue;
        }
        if (c == '\\' && i + 3 < len && re[i + 1] == 'p' && re[i + 2] == '{') {
            const char *close = strchr(re + i + 3, '}');
            if (close && (size_t)(close - re) <= i + 10) {
                size_t plen = (size_t)(close - re) - i + 1;
                size_t k;
                for (k = 0; k < N_UCATS; k++)
                    if (strlen(ucats[k].name) == plen && memcmp(ucats[k].name, re + i, plen) == 0)
                        break;
                if (k < N_UCATS) {
                    if (!inside)
                        out[n++] = '[';
                    out[n++] = ucats[k].standin;
                    for (const char *a = ucats[k].ascii; *a; a++)
                        out[n++] = (uint8_t)*a;
                    if (!inside)
                        out[n++] = ']';
                    i += plen - 1;
                    continue;
                }
            }
        }
        out[n++] = (uint8_t)c;
    }
    return n;
}

static size_t widen_pattern(const char *re, uint32_t *out)
{
    const uint8_t *s = (const uint8_t *)re;
    size_t len = strlen(re), pos = 0, n = 0;
    while (pos < len)
        out[n++] = unicode_decode_lenient(s, len, &pos);
    return n;
}

static sem_status compile_op(const char *re, op *o, sem_err *err)
{
    memset(o, 0, sizeof *o);
    if (strcmp(re, RE_GPT2) == 0) {
        o->kind = OP_GPT2;
        return SEM_OK;
    }
    if (strcmp(re, RE_LLAMA3) == 0) {
        o->kind = OP_LLAMA3;
        return SEM_OK;
    }
    if (strcmp(re, "\\s+$") == 0) {
        o->kind = OP_TRAILING_WS;
        return SEM_OK;
    }
    size_t cap = strlen(re) * 32 + 1;
    uint32_t *pat = malloc(cap * sizeof *pat);
    if (!pat)
        return sem_err_set(err, SEM_ENOMEM, "pretokenizer: out of memory compiling a regex");
    size_t n;
    if (uses_ucat(re)) {
        o->kind = OP_PCRE_COLLAPSED;
        n = collapse_pattern(re, pat);
    } else {
        o->kind = OP_PCRE_WIDE;
        n = widen_pattern(re, pat);
    }
    int code = 0;
    PCRE2_SIZE at = 0;
    o->code = pcre2_compile((PCRE2_SPTR)pat, n, PCRE2_DOLLAR_ENDONLY, &code, &at, NULL);
    free(pat);
    if (!o->code) {
        PCRE2_UCHAR msg[128];
        char m8[128];
        pcre2_get_error_message(code, msg, 128);
        size_t i;
        for (i = 0; i + 1 < sizeof m8 && msg[i]; i++)
            m8[i] = msg[i] < 128 ? (char)msg[i] : '?';
        m8[i] = '\0';
        return sem_err_set(err, SEM_EINTERNAL, "pretokenizer: regex '%s' does not compile at %zu: %s",
                           re, (size_t)at, m8);
    }
    /* JIT is an optimisation only: without it pcre2_match interprets. */
    (void)pcre2_jit_compile(o->code, PCRE2_JIT_COMPLETE);
    return SEM_OK;
}

void pretokenizer_free(pretokenizer *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_ops; i++)
        pcre2_code_free(p->ops[i].code);
    free(p);
}

sem_status pretokenizer_create(const char *name, pretokenizer **out, sem_err *err)
{
    *out = NULL;
    if (!name || !*name)
        name = "default";
    const scheme *sc = NULL;
    for (size_t i = 0; i < N_SCHEMES && !sc; i++)
        if (name_in_list(schemes[i].names, name))
            sc = &schemes[i];
    if (!sc) {
        char list[400];
        pretokenizer_supported(list, sizeof list, 1);
        return sem_err_set(err, SEM_EUNSUPPORTED,
                           "tokenizer.ggml.pre = '%s' is not a supported pre-tokenizer "
                           "(supported: %s; aliases in docs/tokenizers.md)",
                           name, list);
    }
    pretokenizer *p = calloc(1, sizeof *p);
    if (!p)
        return sem_err_set(err, SEM_ENOMEM, "pretokenizer: out of memory");
    snprintf(p->name, sizeof p->name, "%s", name);
    p->traits = sc->traits;
    for (const char *const *re = sc->regexes; *re; re++) {
        if (p->n_ops == sizeof p->ops / sizeof p->ops[0]) {
            pretokenizer_free(p);
            return sem_err_set(err, SEM_EINTERNAL, "pretokenizer: scheme '%s' has too many regexes",
                               name);
        }
        sem_status st = compile_op(*re, &p->ops[p->n_ops], err);
        if (st != SEM_OK) {
            pretokenizer_free(p);
            return st;
        }
        p->n_ops++;
    }
    *out = p;
    return SEM_OK;
}

const char *pretokenizer_name(const pretokenizer *p) { return p->name; }
pretokenizer_traits pretokenizer_get_traits(const pretokenizer *p) { return p->traits; }

/* ---------------------------------------------------------------- splitting */

/* A growable list of segment lengths. */
typedef struct seglist {
    size_t *v;
    size_t n, cap;
    int oom;
} seglist;

static void seg_push(seglist *l, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = len;
}

enum { I_LETTER = 1, I_NUMBER = 2, I_SPACE = 4, I_IN = 8 };

/* The view of one segment [ini, end) the scanners read; outside it a
 * position has no flags and no code point, as in llama.cpp. */
typedef struct scan {
    const uint32_t *cpts;
    const uint8_t *info;
    size_t ini, end, prev_end;
    seglist *out;
} scan;

#define OUT_OF_RANGE 0xFFFFFFFFu

static uint32_t cpt_at(const scan *s, size_t pos)
{
    return pos >= s->ini && pos < s->end ? s->cpts[pos] : OUT_OF_RANGE;
}

static uint8_t flags_at(const scan *s, size_t pos)
{
    return pos >= s->ini && pos < s->end ? (uint8_t)(s->info[pos] | I_IN) : 0;
}

/* Ends the current word at `end`; returns its length (0 words are dropped). */
static size_t add_word(scan *s, size_t end)
{
    size_t len = end - s->prev_end;
    if (len > 0)
        seg_push(s->out, len);
    s->prev_end = end;
    return len;
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's 't 're 've 'm 'll 'd at pos: the match length (0 when none). */
static size_t contraction(const scan *s, size_t pos, int fold)
{
    if (cpt_at(s, pos) != '\'' || pos + 1 >= s->end)
        return 0;
    uint32_t a = cpt_at(s, pos + 1);
    if (fold)
        a = ascii_lower(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (pos + 2 < s->end) {
        uint32_t b = cpt_at(s, pos + 2);
        if (fold)
            b = ascii_lower(b);
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return 3;
    }
    return 0;
}

#define IS_NONWORD(f) (!((f) & (I_SPACE | I_LETTER | I_NUMBER)) && ((f) & I_IN))

/* A run of White_Space at pos: \s+(?!\S) keeps the last one for the next
 * word unless the run ends the segment. */
static size_t space_run(scan *s, size_t pos)
{
    size_t n = 0;
    while (flags_at(s, pos + n) & I_SPACE)
        n++;
    if (n > 1 && cpt_at(s, pos + n) != OUT_OF_RANGE) {
        pos += n - 1;
        add_word(s, pos);
        return pos;
    }
    if (n > 0) {
        pos += n;
        add_word(s, pos);
        return pos;
    }
    add_word(s, ++pos); /* no alternative matched: the code point alone */
    return pos;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(scan *s)
{
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t c = cpt_at(s, pos);
        size_t k = contraction(s, pos, 0);
        if (k) {
            pos += add_word(s, pos + k);
            continue;
        }
        uint8_t f2 = c == ' ' ? flags_at(s, pos + 1) : flags_at(s, pos);
        if (f2 & I_LETTER) {
            pos += c == ' ';
            while (flags_at(s, pos) & I_LETTER)
                pos++;
            add_word(s, pos);
            continue;
        }
        if (f2 & I_NUMBER) {
            pos += c == ' ';
            while (flags_at(s, pos) & I_NUMBER)
                pos++;
            add_word(s, pos);
            continue;
        }
        if (IS_NONWORD(f2)) {
            pos += c == ' ';
            while (IS_NONWORD(flags_at(s, pos)))
                pos++;
            add_word(s, pos);
            continue;
        }
        pos = space_run(s, pos);
    }
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static void split_llama3(scan *s)
{
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t c = cpt_at(s, pos);
        uint8_t f = flags_at(s, pos);
        size_t k = contraction(s, pos, 1);
        if (k) {
            pos += add_word(s, pos + k);
            continue;
        }
        if (!(c == '\r' || c == '\n' || (f & I_NUMBER)) &&
            ((f & I_LETTER) || (flags_at(s, pos + 1) & I_LETTER))) {
            pos++;
            while (flags_at(s, pos) & I_LETTER)
                pos++;
            add_word(s, pos);
            continue;
        }
        if (f & I_NUMBER) {
            size_t ini = pos;
            while (flags_at(s, pos) & I_NUMBER) {
                if (++pos - ini >= 3) {
                    add_word(s, pos);
                    ini = pos;
                }
            }
            add_word(s, pos);
            continue;
        }
        uint8_t f2 = c == ' ' ? flags_at(s, pos + 1) : f;
        if (!(f2 & (I_SPACE | I_LETTER | I_NUMBER)) && (f & I_IN)) {
            pos += c == ' ';
            while (IS_NONWORD(flags_at(s, pos)))
                pos++;
            for (uint32_t c2 = cpt_at(s, pos); c2 == '\r' || c2 == '\n'; c2 = cpt_at(s, ++pos))
                ;
            add_word(s, pos);
            continue;
        }
        size_t n = 0, last_rn = 0;
        while (flags_at(s, pos + n) & I_SPACE) {
            uint32_t c2 = cpt_at(s, pos + n);
            if (c2 == '\r' || c2 == '\n')
                last_rn = pos + n + 1;
            n++;
        }
        if (last_rn > 0) {
            pos = last_rn;
            add_word(s, pos);
            continue;
        }
        pos = space_run(s, pos);
    }
}

/* \s+$ : the maximal run of (ASCII or stand-in) white space ending the segment. */
static void split_trailing_ws(const uint32_t *wide, size_t ini, size_t end, seglist *out)
{
    size_t p = end;
    while (p > ini) {
        uint32_t c = wide[p - 1];
        if (!(c == ' ' || (c >= 0x09 && c <= 0x0D)))
            break;
        p--;
    }
    if (p == end) {
        seg_push(out, end - ini);
        return;
    }
    if (p > ini)
        seg_push(out, p - ini);
    seg_push(out, end - p);
}

/*
 * std::regex_iterator over one segment: matches and the gaps between them
 * become segments. After an empty match the next try is anchored and must
 * be non-empty; failing that the search resumes one unit later.
 */
static sem_status split_pcre(const pcre2_code *code, const uint32_t *subject, size_t len,
                             pcre2_match_data *md, seglist *out, sem_err *err)
{
    size_t start_idx = 0, pos = 0;
    uint32_t opts = 0;
    for (;;) {
        int rc = pcre2_match(code, (PCRE2_SPTR)subject, len, pos, opts, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(code, (PCRE2_SPTR)subject, len, pos, opts | PCRE2_NO_JIT, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) {
            if (opts) { /* the anchored non-empty retry failed: move on */
                opts = 0;
                if (pos >= len)
                    break;
                pos++;
                continue;
            }
            break;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[128];
            char m8[128];
            pcre2_get_error_message(rc, msg, 128);
            size_t i;
            for (i = 0; i + 1 < sizeof m8 && msg[i]; i++)
                m8[i] = msg[i] < 128 ? (char)msg[i] : '?';
            m8[i] = '\0';
            return sem_err_set(err, SEM_ETOOLARGE,
                               "pretokenizer: regex matching failed on a %zu-code-point "
                               "segment: %s",
                               len, m8);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms > start_idx)
            seg_push(out, ms - start_idx);
        seg_push(out, me - ms);
        start_idx = me;
        pos = me;
        if (me == ms) {
            if (me >= len)
                break;
            opts = PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED;
        } else {
            opts = 0;
        }
    }
    if (start_idx < len)
        seg_push(out, len - start_idx);
    return SEM_OK;
}

sem_status pretokenizer_split(const pretokenizer *p, const uint32_t *cpts, size_t n,
                              size_t **lens, size_t *n_words, sem_err *err)
{
    *lens = NULL;
    *n_words = 0;
    sem_status st = SEM_OK;
    uint8_t *info = malloc(n ? n : 1);
    uint32_t *collapsed = NULL, *wide = NULL;
    pcre2_match_data *md = NULL;
    seglist cur = {0}, next = {0};
    if (!info)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cpts[i];
        unicode_class k = unicode_class_of(c);
        info[i] = (uint8_t)((k == UNICODE_LETTER ? I_LETTER : 0) |
                            (k == UNICODE_NUMBER ? I_NUMBER : 0) |
                            (unicode_is_whitespace(c) ? I_SPACE : 0));
    }
    seg_push(&cur, n);
    for (size_t r = 0; r < p->n_ops && st == SEM_OK; r++) {
        const op *o = &p->ops[r];
        const uint32_t *view = NULL;
        if (o->kind == OP_PCRE_COLLAPSED) {
            if (!collapsed) {
                static const uint32_t standin[] = {
                    [UNICODE_UNDEFINED] = 0xD0, [UNICODE_NUMBER] = 0xD1,
                    [UNICODE_LETTER] = 0xD2,    [UNICODE_SEPARATOR] = 0xD0,
                    [UNICODE_MARK] = 0xD4,      [UNICODE_PUNCTUATION] = 0xD3,
                    [UNICODE_SYMBOL] = 0xD5,    [UNICODE_CONTROL] = 0xD0};
                if (!(collapsed = malloc((n ? n : 1) * sizeof *collapsed)))
                    goto oom;
                for (size_t i = 0; i < n; i++) {
                    uint32_t c = cpts[i];
                    collapsed[i] = c < 128 ? c
                                   : (info[i] & I_SPACE) ? 0x0B
                                   : standin[unicode_class_of(c)];
                }
            }
            view = collapsed;
        } else if (o->kind == OP_PCRE_WIDE || o->kind == OP_TRAILING_WS) {
            if (!wide) {
                if (!(wide = malloc((n ? n : 1) * sizeof *wide)))
                    goto oom;
                for (size_t i = 0; i < n; i++)
                    wide[i] = cpts[i] > 0x7F && (info[i] & I_SPACE) ? 0x0B : cpts[i];
            }
            view = wide;
        }
        if (view && o->code && !md) {
            /* Room for the largest ovector of any op. */
            if (!(md = pcre2_match_data_create(32, NULL)))
                goto oom;
        }
        next.n = 0;
        size_t start = 0;
        for (size_t sgi = 0; sgi < cur.n && st == SEM_OK; sgi++) {
            size_t len = cur.v[sgi];
            scan sc = {cpts, info, start, start + len, start, &next};
            switch (o->kind) {
            case OP_GPT2:
                split_gpt2(&sc);
                break;
            case OP_LLAMA3:
                split_llama3(&sc);
                break;
            case OP_TRAILING_WS:
                split_trailing_ws(view, start, start + len, &next);
                break;
            case OP_PCRE_COLLAPSED:
            case OP_PCRE_WIDE:
                st = split_pcre(o->code, view + start, len, md, &next, err);
                break;
            }
            start += len;
        }
        if (next.oom || cur.oom)
            goto oom;
        seglist t = cur;
        cur = next;
        next = t;
    }
    if (st != SEM_OK)
        goto done;
    *lens = cur.v;
    *n_words = cur.n;
    cur.v = NULL;
    goto done;
oom:
    st = sem_err_set(err, SEM_ENOMEM, "pretokenizer: out of memory splitting %zu code points", n);
done:
    pcre2_match_data_free(md);
    free(cur.v);
    free(next.v);
    free(info);
    free(collapsed);
    free(wide);
    return st;
}
