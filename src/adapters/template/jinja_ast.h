/*
 * jinja_ast.h - the syntax tree of a parsed Jinja template.
 *
 * jinja_parser.c builds it (lexer and recursive-descent parser, with the
 * whitespace rules of HF transformers and llama.cpp: trim_blocks,
 * lstrip_blocks, no trailing newline); jinja_eval.c walks it. All nodes and
 * strings live in the template's arena and are never changed after parsing,
 * so one tree may be rendered by many threads at once.
 *
 * One node type serves statements and expressions; the comment after each
 * kind says which fields it uses. `list`/`n` and `list2`/`n2` are child
 * arrays; `name` is a byte string of `name_len` bytes (also NUL-terminated);
 * `line`/`col` (1-based, col in bytes) locate the node for error messages.
 */
#ifndef SEM_JINJA_AST_H
#define SEM_JINJA_AST_H

#include "jinja_value.h"

typedef enum jnode_kind {
    /* statements */
    JN_TEXT,         /* name = the text */
    JN_OUTPUT,       /* {{ a }} */
    JN_IF,           /* a = condition, list = body, d = the next elif (a JN_IF) or NULL,
                        list2 = else body (on the last branch) */
    JN_FOR,          /* a = target (JN_NAME or JN_TUPLE of names), b = iterable, c = filter or NULL,
                        list = body, list2 = else body */
    JN_SET,          /* a = target (JN_NAME, JN_ATTR of a name, JN_TUPLE of names), b = value */
    JN_SET_BLOCK,    /* a = target name, c = filter chain (innermost operand NULL) or NULL, list = body */
    JN_MACRO,        /* name, list = body, list2 = parameters (JN_NAME with b = default or NULL) */
    JN_FILTER_BLOCK, /* c = filter chain (innermost operand NULL), list = body */
    JN_BREAK,
    JN_CONTINUE,
    JN_DO,           /* a = expression evaluated for its effect */
    JN_GROUP,        /* list = body, run in place ({% generation %}) */

    /* expressions */
    JN_LITERAL,      /* lit */
    JN_NAME,         /* name */
    JN_LIST,         /* list = items */
    JN_TUPLE,        /* list = items */
    JN_DICT,         /* list = keys, list2 = values */
    JN_ATTR,         /* a.name */
    JN_ITEM,         /* a[b] */
    JN_SLICE,        /* a[b:c:d], each of b, c, d may be NULL */
    JN_CALL,         /* a(list), keyword arguments are JN_KWARG items */
    JN_KWARG,        /* name = a */
    JN_FILTER,       /* a | name(list); a is NULL for the input of a filter block */
    JN_TEST,         /* a is [not] name(list); flag = negated */
    JN_NOT,          /* not a */
    JN_NEG,          /* -a */
    JN_POS,          /* +a */
    JN_BINOP,        /* a op b */
    JN_AND,          /* a and b */
    JN_OR,           /* a or b */
    JN_COND          /* a if b else c (c may be NULL) */
} jnode_kind;

typedef enum jbinop {
    JOP_ADD,
    JOP_SUB,
    JOP_MUL,
    JOP_DIV,
    JOP_FLOORDIV,
    JOP_MOD,
    JOP_POW,
    JOP_CONCAT, /* ~ */
    JOP_EQ,
    JOP_NE,
    JOP_LT,
    JOP_LE,
    JOP_GT,
    JOP_GE,
    JOP_IN,
    JOP_NOTIN
} jbinop;

typedef struct jnode jnode;
struct jnode {
    jnode_kind kind;
    int op; /* jbinop for JN_BINOP */
    uint32_t line, col;
    const char *name;
    size_t name_len;
    jv lit;
    jnode *a, *b, *c, *d;
    jnode **list;
    size_t n;
    jnode **list2;
    size_t n2;
    bool flag;
};

/* A parsed template: the root body and the arena holding every node. */
typedef struct jinja_tree {
    jarena arena;
    jnode **body;
    size_t n;
} jinja_tree;

/* Parses source (len bytes). On failure returns NULL with SEM_EINVAL (syntax),
 * SEM_EUNSUPPORTED (a construct semantic does not run) or SEM_ENOMEM, and a
 * detail naming the line and column. */
jinja_tree *jinja_tree_parse(const char *source, size_t len, sem_err *err);
void jinja_tree_free(jinja_tree *t);

/* Most nested brackets, expressions and blocks the parser accepts. */
#define JINJA_MAX_NESTING 128

#endif
