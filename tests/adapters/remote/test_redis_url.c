/*
 * The address of a Redis server (adapters/remote/redis_url.h): redis://
 * and rediss:// URLs, rediss://'s options (cacert, cert, key, insecure),
 * what is refused and how it is described for logs (never the password).
 */
#include "../../test_util.h"

#include "adapters/remote/redis_url.h"

/* Parses url, failing the test with the detail when it is refused. */
static redis_url parse_ok(const char *url)
{
    redis_url u;
    sem_err err = {0};
    if (redis_url_parse(url, &u, &err) != SEM_OK)
        fail_msg("'%s' was refused: %s", url, err.detail);
    return u;
}

/* Asserts url is refused with SEM_EINVAL and a detail holding needle. */
static void refused(const char *url, const char *needle)
{
    redis_url u;
    sem_err err = {0};
    if (redis_url_parse(url, &u, &err) != SEM_EINVAL)
        fail_msg("'%s' was accepted", url);
    if (!strstr(err.detail, needle))
        fail_msg("'%s': expected \"%s\" in \"%s\"", url, needle, err.detail);
}

/* ------------------------------------------------------------ redis:// */

static void test_redis_urls(void **state)
{
    (void)state;
    redis_url u = parse_ok("redis://localhost");
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_false(u.has_password);
    assert_false(u.tls);
    u = parse_ok("redis://10.0.0.7:6380/3");
    assert_string_equal(u.host, "10.0.0.7");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    u = parse_ok("redis://:s%40cret@h:1");
    assert_true(u.has_password);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "s@cret");
    u = parse_ok("redis://alice:pw:x@h/");
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "pw:x");
    assert_int_equal(u.db, 0);
    u = parse_ok("redis://[::1]:7000/1");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    char desc[300];
    u = parse_ok("redis://alice:secret@h:1/2");
    redis_url_describe(&u, desc, sizeof desc);
    assert_string_equal(desc, "redis://alice:***@h:1/2");
    redis_url_describe_tls(&u, desc, sizeof desc);
    assert_string_equal(desc, "");
}

static void test_redis_urls_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "http://h", "redis://", "redis://:6379", "redis://h:0", "redis://h:65536",
        "redis://h:12x", "redis://h/x", "redis://h/-1", "redis://h/1/2",
        "redis://pw@h", "redis://a:%zz@h", "redis://[::1", "redis://h#f", "redis://a b",
        "rediss://", "redis:/h", "REDIS://h",
    };
    redis_url u;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sem_err err = {0};
        if (redis_url_parse(bad[i], &u, &err) != SEM_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(strlen(err.detail) > 0);
    }
    assert_int_equal(redis_url_parse(NULL, &u, NULL), SEM_EINVAL);
    /* Options are rediss://'s: on redis:// they would be ignored, so they
     * are refused. */
    refused("redis://h?db=1", "rediss://");
    refused("redis://h/0?cacert=/ca.pem", "rediss://");
}

/* ------------------------------------------------------------ rediss:// */

static void test_rediss_defaults_verify(void **state)
{
    (void)state;
    redis_url u = parse_ok("rediss://cache.example:6380/2");
    assert_true(u.tls);
    assert_false(u.tls_insecure);
    assert_string_equal(u.host, "cache.example");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_string_equal(u.tls_ca, "");
    assert_string_equal(u.tls_cert, "");
    assert_string_equal(u.tls_key, "");
    u = parse_ok("rediss://h");
    assert_int_equal(u.port, 6379);
    char desc[600];
    redis_url_describe(&u, desc, sizeof desc);
    assert_string_equal(desc, "rediss://h:6379/0");
    redis_url_describe_tls(&u, desc, sizeof desc);
    assert_contains(desc, "verified against the system's CA store");
}

static void test_rediss_options(void **state)
{
    (void)state;
    redis_url u = parse_ok("rediss://bob:pw@h:6380/0?cacert=/etc/ca.pem&cert=/c/me.pem"
                           "&key=/c/me.key");
    assert_string_equal(u.user, "bob");
    assert_string_equal(u.password, "pw");
    assert_string_equal(u.tls_ca, "/etc/ca.pem");
    assert_string_equal(u.tls_cert, "/c/me.pem");
    assert_string_equal(u.tls_key, "/c/me.key");
    char desc[3000];
    redis_url_describe(&u, desc, sizeof desc);
    assert_string_equal(desc, "rediss://bob:***@h:6380/0"); /* no options, no password */
    redis_url_describe_tls(&u, desc, sizeof desc);
    assert_contains(desc, "verified against CA file /etc/ca.pem");
    assert_contains(desc, "client certificate /c/me.pem with key /c/me.key");
    assert_null(strstr(desc, "pw"));
    /* The options in any order, after "/", "/DB" or the host; %XX escapes
     * in paths; '@' and '=' in a path are not credentials or a new option. */
    u = parse_ok("rediss://h/?key=/k%20dir/a.key&cert=/c@d/a=b.pem");
    assert_string_equal(u.tls_key, "/k dir/a.key");
    assert_string_equal(u.tls_cert, "/c@d/a=b.pem");
    assert_int_equal(u.db, 0);
    u = parse_ok("rediss://:p%40ss@h?cacert=/x@y");
    assert_string_equal(u.password, "p@ss");
    assert_string_equal(u.host, "h");
    assert_string_equal(u.tls_ca, "/x@y");
    u = parse_ok("rediss://[::1]:7000?cert=/both.pem");
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.tls_cert, "/both.pem");
    assert_string_equal(u.tls_key, ""); /* read from cert's file */
    u = parse_ok("rediss://h?insecure=1&cert=/c.pem");
    assert_true(u.tls_insecure);
    redis_url_describe_tls(&u, desc, sizeof desc);
    assert_contains(desc, "NOT verified (insecure=1)");
    u = parse_ok("rediss://h?insecure=0&cacert=/ca.pem");
    assert_false(u.tls_insecure);
}

static void test_rediss_bad_options_refused(void **state)
{
    (void)state;
    refused("rediss://h?verify=0", "unknown option 'verify'");
    refused("rediss://h?CACERT=/x", "unknown option");
    refused("rediss://h?cacert", "NAME=VALUE");
    refused("rediss://h?averyveryverylongname=1", "NAME=VALUE");
    refused("rediss://h?cacert=", "'cacert' needs a path");
    refused("rediss://h?cert=/a%zz", "'cert' needs a path");
    refused("rediss://h?key=/k&cert=/a%0a.pem", "control character");
    refused("rediss://h?cacert=/a&cacert=/b", "'cacert' is given twice");
    refused("rediss://h?insecure=1&insecure=1", "'insecure' is given twice");
    refused("rediss://h?insecure=yes", "must be 0 or 1");
    refused("rediss://h?insecure=", "must be 0 or 1");
    refused("rediss://h?key=/k.pem", "key= without cert=");
    refused("rediss://h?insecure=1&cacert=/ca.pem", "contradict");
    refused("rediss://h?", "empty option");
    refused("rediss://h?&cacert=/a", "empty option");
    refused("rediss://h?cacert=/a&", "empty option");
    refused("rediss://h?cacert=/a&&cert=/b", "empty option");
    refused("rediss://h?cacert=/a#frag", "fragment");
    refused("rediss://h/x?cacert=/a", "database");
    refused("rediss://h/1/2?cacert=/a", "database");
    /* A path at the limit is taken, one byte more is refused. */
    char url[REDIS_URL_PATH_MAX + 64];
    char path[REDIS_URL_PATH_MAX + 2];
    memset(path, 'p', sizeof path);
    path[0] = '/';
    path[REDIS_URL_PATH_MAX] = '\0';
    snprintf(url, sizeof url, "rediss://h?cacert=%s", path);
    redis_url u = parse_ok(url);
    assert_int_equal(strlen(u.tls_ca), REDIS_URL_PATH_MAX);
    path[REDIS_URL_PATH_MAX] = 'p';
    path[REDIS_URL_PATH_MAX + 1] = '\0';
    snprintf(url, sizeof url, "rediss://h?cacert=%s", path);
    refused(url, "needs a path of 1..1023 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_urls),
        cmocka_unit_test(test_redis_urls_refused),
        cmocka_unit_test(test_rediss_defaults_verify),
        cmocka_unit_test(test_rediss_options),
        cmocka_unit_test(test_rediss_bad_options_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
