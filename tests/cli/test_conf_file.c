/* Specification of conf_file.h: config files of `name = value` lines and
 * lists of one item per line. */
#include "../test_util.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/conf_file.h"

static conf_file *parse_ok(const char *text, conf_file_kind kind)
{
    conf_file *f = NULL;
    sem_err err = {0};
    if (conf_file_parse("test.conf", text, strlen(text), kind, &f, &err) != SEM_OK)
        fail_msg("parse failed: %s", err.detail);
    assert_non_null(f);
    return f;
}

/* Parses text expecting a failure; returns the error's detail. */
static sem_err parse_fails(const char *text, size_t len, conf_file_kind kind, sem_status want)
{
    conf_file *f = (conf_file *)1;
    sem_err err = {0};
    assert_int_equal(conf_file_parse("test.conf", text, len, kind, &f, &err), want);
    assert_int_equal(err.status, want);
    assert_null(f);
    return err;
}

static void assert_entry(const conf_file *f, size_t i, const char *name, const char *value,
                         uint32_t line)
{
    const conf_entry *e = conf_file_entry(f, i);
    assert_non_null(e);
    if (name)
        assert_string_equal(e->name, name);
    else
        assert_null(e->name);
    assert_string_equal(e->value, value);
    assert_int_equal(e->line, line);
}

/* ---------------------------------------------------------------- options */

static void options_read_in_file_order_with_their_lines(void **state)
{
    (void)state;
    conf_file *f = parse_ok("# the server\n"
                            "\n"
                            "port = 8000\n"
                            "  host=0.0.0.0  \n"
                            "\t# an indented comment\n"
                            "api-key = first\n"
                            "api-key =second\n"
                            "model = /srv/models/a.gguf",
                            CONF_FILE_OPTIONS);
    assert_int_equal(conf_file_count(f), 5);
    assert_entry(f, 0, "port", "8000", 3);
    assert_entry(f, 1, "host", "0.0.0.0", 4);
    assert_entry(f, 2, "api-key", "first", 6); /* a repeated name is kept twice, in order */
    assert_entry(f, 3, "api-key", "second", 7);
    assert_entry(f, 4, "model", "/srv/models/a.gguf", 8); /* no final newline */
    assert_null(conf_file_entry(f, 5));
    assert_string_equal(conf_file_path(f), "test.conf");
    conf_file_free(f);
}

static void a_lone_quote_is_refused(void **state)
{
    (void)state;
    const char *t = "x = \"\n";
    sem_err e = parse_fails(t, strlen(t), CONF_FILE_OPTIONS, SEM_EINVAL);
    assert_contains(e.detail, "test.conf:1:");
    assert_contains(e.detail, "quote");
}

static void values_are_trimmed_unquoted_and_may_be_empty(void **state)
{
    (void)state;
    conf_file *f = parse_ok("api-key = a=b#c\r\n"
                            "cache-dir =\r\n"
                            "cache-dir = \"\"\n"
                            "model-id = \" x y \"\n"
                            "chat-template-file = \"a\"b\"\n"
                            "tab\t=\tv\t\n",
                            CONF_FILE_OPTIONS);
    assert_int_equal(conf_file_count(f), 6);
    assert_entry(f, 0, "api-key", "a=b#c", 1);
    assert_entry(f, 1, "cache-dir", "", 2);
    assert_entry(f, 2, "cache-dir", "", 3);
    assert_entry(f, 3, "model-id", " x y ", 4);
    assert_entry(f, 4, "chat-template-file", "a\"b", 5);
    assert_entry(f, 5, "tab", "v", 6);
    conf_file_free(f);
}

static void an_empty_or_comment_only_file_has_no_entries(void **state)
{
    (void)state;
    const char *texts[] = {"", "\n\n", "# only\n  # comments\r\n", "   \t  "};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        conf_file *f = parse_ok(texts[i], CONF_FILE_OPTIONS);
        assert_int_equal(conf_file_count(f), 0);
        assert_null(conf_file_entry(f, 0));
        conf_file_free(f);
    }
}

static void bad_lines_name_the_file_and_line(void **state)
{
    (void)state;
    static const struct {
        const char *text, *where, *why;
    } cases[] = {
        {"port = 1\nport 8000\n", "test.conf:2:", "no '='"},
        {"\n\n = 5\n", "test.conf:3:", "no option name"},
        {"--port = 1\n", "test.conf:1:", "letters, digits and '-'"},
        {"max batch = 1\n", "test.conf:1:", "letters, digits and '-'"},
        {"port.x = 1\n", "test.conf:1:", "letters, digits and '-'"},
        {"2port = 1\n", "test.conf:1:", "a letter, then"},
        {"# ok\nmodel-id = \"open\n", "test.conf:2:", "double quote"},
        {"model-id = \"\n", "test.conf:1:", "double quote"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sem_err e = parse_fails(cases[i].text, strlen(cases[i].text), CONF_FILE_OPTIONS,
                                SEM_EINVAL);
        assert_true(strncmp(e.detail, cases[i].where, strlen(cases[i].where)) == 0);
        assert_contains(e.detail, cases[i].why);
    }
}

static void errors_never_quote_the_line(void **state)
{
    (void)state;
    /* A key written without "api-key =" must not reach a log. */
    const char *t = "port = 1\nsk-live-very-secret\n";
    sem_err e = parse_fails(t, strlen(t), CONF_FILE_OPTIONS, SEM_EINVAL);
    assert_contains(e.detail, "test.conf:2:");
    assert_null(strstr(e.detail, "secret"));
    const char *u = "api key = sk-live-very-secret\n";
    e = parse_fails(u, strlen(u), CONF_FILE_OPTIONS, SEM_EINVAL);
    assert_null(strstr(e.detail, "secret"));
}

static void a_nul_byte_is_not_text(void **state)
{
    (void)state;
    const char t[] = "port = 1\nhost = a\0b\n";
    sem_err e = parse_fails(t, sizeof t - 1, CONF_FILE_OPTIONS, SEM_EINVAL);
    assert_contains(e.detail, "test.conf:2:");
    assert_contains(e.detail, "NUL");
    e = parse_fails(t, sizeof t - 1, CONF_FILE_LIST, SEM_EINVAL);
    assert_contains(e.detail, "test.conf:2:");
}

static void a_file_beyond_the_limit_is_refused(void **state)
{
    (void)state;
    size_t n = CONF_FILE_MAX_BYTES + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '#', n);
    sem_err e = parse_fails(big, n, CONF_FILE_OPTIONS, SEM_ETOOLARGE);
    assert_contains(e.detail, "1048576");
    /* Exactly the limit is fine (one long comment). */
    conf_file *f = NULL;
    assert_int_equal(conf_file_parse("test.conf", big, n - 1, CONF_FILE_OPTIONS, &f, &e), SEM_OK);
    assert_int_equal(conf_file_count(f), 0);
    conf_file_free(f);
    free(big);
}

static void where_prefixes_an_error_with_file_and_line(void **state)
{
    (void)state;
    conf_file *f = parse_ok("\nport = 99999\n", CONF_FILE_OPTIONS);
    sem_err err = {0};
    sem_err_set(&err, SEM_EINVAL, "--port: 99999 is out of range");
    assert_int_equal(conf_file_where(f, conf_file_entry(f, 0), &err), SEM_EINVAL);
    assert_string_equal(err.detail, "test.conf:2: --port: 99999 is out of range");
    conf_file_free(f);
}

/* ---------------------------------------------------------------- lists */

static void a_list_is_one_item_per_line(void **state)
{
    (void)state;
    conf_file *f = parse_ok("# keys of the team\n"
                            "key-one\r\n"
                            "\n"
                            "  key=two  \n"
                            "\"quoted\"\n"
                            "# key-three, revoked\n"
                            "last",
                            CONF_FILE_LIST);
    assert_int_equal(conf_file_count(f), 4);
    assert_entry(f, 0, NULL, "key-one", 2);
    assert_entry(f, 1, NULL, "key=two", 4); /* no name = value split in a list */
    assert_entry(f, 2, NULL, "\"quoted\"", 5);
    assert_entry(f, 3, NULL, "last", 7);
    conf_file_free(f);
}

/* ---------------------------------------------------------------- files */

static char tmp_dir[] = "/tmp/semantic-conf-XXXXXX";

static int make_dir(void **state)
{
    (void)state;
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void a_file_on_disk_reads_like_its_text(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/semantic.conf", tmp_dir);
    const char *t = "# served\nport = 8123\napi-key-file = /run/keys\n";
    write_file(path, t, strlen(t));
    conf_file *f = NULL;
    sem_err err = {0};
    assert_int_equal(conf_file_load(path, CONF_FILE_OPTIONS, &f, &err), SEM_OK);
    assert_string_equal(conf_file_path(f), path);
    assert_int_equal(conf_file_count(f), 2);
    assert_entry(f, 0, "port", "8123", 2);
    assert_entry(f, 1, "api-key-file", "/run/keys", 3);
    conf_file_free(f);
    /* An empty file: no entries. */
    write_file(path, "", 0);
    assert_int_equal(conf_file_load(path, CONF_FILE_LIST, &f, &err), SEM_OK);
    assert_int_equal(conf_file_count(f), 0);
    conf_file_free(f);
}

static void a_bad_line_on_disk_names_the_path(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/bad.conf", tmp_dir);
    write_file(path, "port = 1\n\nbroken\n", 17);
    conf_file *f = (conf_file *)1;
    sem_err err = {0};
    assert_int_equal(conf_file_load(path, CONF_FILE_OPTIONS, &f, &err), SEM_EINVAL);
    assert_null(f);
    char want[300];
    snprintf(want, sizeof want, "%s:3:", path);
    assert_contains(err.detail, want);
}

static void missing_folder_and_oversized_files_are_refused(void **state)
{
    (void)state;
    char path[256];
    conf_file *f = (conf_file *)1;
    sem_err err = {0};
    snprintf(path, sizeof path, "%s/absent.conf", tmp_dir);
    assert_int_equal(conf_file_load(path, CONF_FILE_OPTIONS, &f, &err), SEM_ENOTFOUND);
    assert_null(f);
    assert_contains(err.detail, path);
    assert_int_equal(conf_file_load(tmp_dir, CONF_FILE_OPTIONS, &f, &err), SEM_EIO);
    assert_contains(err.detail, "folder");
    /* Larger than the limit: refused without reading it all. */
    snprintf(path, sizeof path, "%s/big.conf", tmp_dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(ftruncate(fileno(fp), 3 * (off_t)CONF_FILE_MAX_BYTES), 0);
    fclose(fp);
    assert_int_equal(conf_file_load(path, CONF_FILE_LIST, &f, &err), SEM_ETOOLARGE);
    assert_contains(err.detail, path);
    assert_null(f);
}

static void an_unreadable_file_is_an_io_error(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip(); /* root reads a file of mode 000 */
    char path[256];
    snprintf(path, sizeof path, "%s/secret.conf", tmp_dir);
    write_file(path, "port = 1\n", 9);
    assert_int_equal(chmod(path, 0), 0);
    conf_file *f = (conf_file *)1;
    sem_err err = {0};
    assert_int_equal(conf_file_load(path, CONF_FILE_OPTIONS, &f, &err), SEM_EIO);
    assert_null(f);
    assert_contains(err.detail, strerror(EACCES));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(options_read_in_file_order_with_their_lines),
        cmocka_unit_test(a_lone_quote_is_refused),
        cmocka_unit_test(values_are_trimmed_unquoted_and_may_be_empty),
        cmocka_unit_test(an_empty_or_comment_only_file_has_no_entries),
        cmocka_unit_test(bad_lines_name_the_file_and_line),
        cmocka_unit_test(errors_never_quote_the_line),
        cmocka_unit_test(a_nul_byte_is_not_text),
        cmocka_unit_test(a_file_beyond_the_limit_is_refused),
        cmocka_unit_test(where_prefixes_an_error_with_file_and_line),
        cmocka_unit_test(a_list_is_one_item_per_line),
        cmocka_unit_test(a_file_on_disk_reads_like_its_text),
        cmocka_unit_test(a_bad_line_on_disk_names_the_path),
        cmocka_unit_test(missing_folder_and_oversized_files_are_refused),
        cmocka_unit_test(an_unreadable_file_is_an_io_error),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
