/*
 * conf_file.c - config and list files (conf_file.h has the rules).
 *
 * The whole file is read into one buffer, which the entries then point
 * into: each line is cut in place (its end and the '=' become NULs), so a
 * file costs one copy of its text plus one array of entries, and a failed
 * parse frees both.
 */
#include "conf_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct conf_file {
    char *path;
    char *text; /* the file's bytes, cut into NUL-terminated names and values */
    conf_entry *entries;
    size_t n;
};

/* ---------------------------------------------------------------- lines */

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* [*s, *e) without the blank space around it. */
static void trim(char **s, char **e)
{
    while (*s < *e && is_blank(**s))
        (*s)++;
    while (*e > *s && is_blank((*e)[-1]))
        (*e)--;
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static sem_status line_error(const conf_file *f, uint32_t line, const char *what, sem_err *err)
{
    return sem_err_set(err, SEM_EINVAL, "%s:%u: %s", f->path, line, what);
}

/* One `name = value` line [s, e), not blank and not a comment. */
static sem_status parse_option(conf_file *f, char *s, char *e, uint32_t line, sem_err *err)
{
    char *eq = memchr(s, '=', (size_t)(e - s));
    if (!eq)
        return line_error(f, line, "no '=' in this line (lines are 'name = value')", err);
    char *ns = s, *ne = eq, *vs = eq + 1, *ve = e;
    trim(&ns, &ne);
    trim(&vs, &ve);
    if (ns == ne)
        return line_error(f, line, "no option name before '='", err);
    int bad = !((*ns >= 'a' && *ns <= 'z') || (*ns >= 'A' && *ns <= 'Z'));
    for (char *p = ns; p < ne; p++)
        bad |= !name_char(*p);
    if (bad)
        return line_error(f, line,
                          "an option name is a letter, then letters, digits and '-' (the long "
                          "flag without \"--\")",
                          err);
    if (vs < ve && *vs == '"') {
        if (ve - vs < 2 || ve[-1] != '"')
            return line_error(f, line, "a value that opens a double quote must end with one",
                              err);
        vs++;
        ve--;
    }
    *ne = '\0';
    *ve = '\0';
    f->entries[f->n++] = (conf_entry){.name = ns, .value = vs, .line = line};
    return SEM_OK;
}

static sem_status parse_lines(conf_file *f, size_t len, conf_file_kind kind, sem_err *err)
{
    char *s = f->text, *end = f->text + len;
    for (uint32_t line = 1; s < end; line++) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *e = nl ? nl : end, *next = nl ? nl + 1 : end;
        if (e > s && e[-1] == '\r')
            e--;
        trim(&s, &e);
        if (s < e && *s != '#') {
            if (kind == CONF_FILE_LIST) {
                *e = '\0';
                f->entries[f->n++] = (conf_entry){.name = NULL, .value = s, .line = line};
            } else if (parse_option(f, s, e, line, err) != SEM_OK) {
                return err->status;
            }
        }
        s = next;
    }
    return SEM_OK;
}

/* ---------------------------------------------------------------- files */

sem_status conf_file_parse(const char *label, const char *text, size_t len, conf_file_kind kind,
                           conf_file **out, sem_err *err)
{
    *out = NULL;
    if (len > CONF_FILE_MAX_BYTES)
        return sem_err_set(err, SEM_ETOOLARGE,
                           "%s is %zu bytes; a config or key file may hold %u at most", label,
                           len, CONF_FILE_MAX_BYTES);
    /* Where the first NUL is tells the line to blame. */
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        uint32_t line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        return sem_err_set(err, SEM_EINVAL, "%s:%u: a NUL byte: not a text file", label, line);
    }
    size_t lines = 1;
    for (const char *p = text; (p = memchr(p, '\n', len - (size_t)(p - text))) != NULL; p++)
        lines++;
    conf_file *f = calloc(1, sizeof *f);
    if (f) {
        f->path = strdup(label);
        f->text = malloc(len + 1);
        f->entries = calloc(lines, sizeof *f->entries);
    }
    if (!f || !f->path || !f->text || !f->entries) {
        conf_file_free(f);
        return sem_err_set(err, SEM_ENOMEM, "out of memory reading %s", label);
    }
    memcpy(f->text, text, len);
    f->text[len] = '\0';
    if (parse_lines(f, len, kind, err) != SEM_OK) {
        conf_file_free(f);
        return err->status;
    }
    *out = f;
    return SEM_OK;
}

/* The bytes of fd, refused once they pass CONF_FILE_MAX_BYTES. */
static sem_status read_all(int fd, const char *path, char **out, size_t *len, sem_err *err)
{
    size_t cap = 0, n = 0;
    char *buf = NULL;
    for (;;) {
        if (n == cap) {
            if (cap > CONF_FILE_MAX_BYTES) {
                free(buf);
                return sem_err_set(err, SEM_ETOOLARGE,
                                   "%s is larger than %u bytes, the most a config or key file "
                                   "may hold",
                                   path, CONF_FILE_MAX_BYTES);
            }
            size_t grown_cap = cap ? cap * 2 : 4096;
            char *grown = realloc(buf, grown_cap);
            if (!grown) {
                free(buf);
                return sem_err_set(err, SEM_ENOMEM, "out of memory reading %s", path);
            }
            buf = grown;
            cap = grown_cap;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            return sem_err_set(err, SEM_EIO, "cannot read %s: %s", path, strerror(e));
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    *out = buf;
    *len = n;
    return SEM_OK;
}

sem_status conf_file_load(const char *path, conf_file_kind kind, conf_file **out, sem_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sem_err_set(err, errno == ENOENT ? SEM_ENOTFOUND : SEM_EIO, "cannot open %s: %s",
                           path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        close(fd);
        return sem_err_set(err, SEM_EIO, "%s is a folder, not a file", path);
    }
    char *text = NULL;
    size_t len = 0;
    sem_status st = read_all(fd, path, &text, &len, err);
    close(fd);
    if (st == SEM_OK)
        st = conf_file_parse(path, text, len, kind, out, err);
    free(text);
    return st;
}

size_t conf_file_count(const conf_file *f) { return f->n; }

const conf_entry *conf_file_entry(const conf_file *f, size_t i)
{
    return i < f->n ? &f->entries[i] : NULL;
}

const char *conf_file_path(const conf_file *f) { return f->path; }

sem_status conf_file_where(const conf_file *f, const conf_entry *e, sem_err *err)
{
    return sem_err_wrap(err, "%s:%u", f->path, e->line);
}

void conf_file_free(conf_file *f)
{
    if (!f)
        return;
    free(f->path);
    free(f->text);
    free(f->entries);
    free(f);
}
