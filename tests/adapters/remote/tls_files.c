/*
 * tls_files.c - the TLS tests' certificates (tls_files.h): one shell
 * script of openssl commands, run in the new folder, its output kept in
 * openssl.log for the failure message.
 */
#include "tls_files.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tls_files {
    char dir[512];
};

/* A CA: self-signed, allowed to sign certificates. $1: file stem, $2: CN. */
#define SCRIPT_CA                                                                          \
    "ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "   \
    "-keyout $1.key -out $1.pem -days 2 -subj /CN=$2 "                                    \
    "-addext basicConstraints=critical,CA:TRUE "                                          \
    "-addext keyUsage=critical,keyCertSign,cRLSign; }\n"
/* A leaf: $1 stem, $2 signing CA's stem, $3 CN, $4 subjectAltName, $5 usage. */
#define SCRIPT_LEAF                                                                        \
    "leaf() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "       \
    "-keyout $1.key -out $1.csr -subj /CN=$3 && "                                         \
    "printf 'subjectAltName=%s\\nextendedKeyUsage=%s\\nbasicConstraints=CA:FALSE\\n' "     \
    "\"$4\" \"$5\" > $1.ext && "                                                          \
    "openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -days 2 "      \
    "-extfile $1.ext -out $1.pem; }\n"

static const char SCRIPT[] =
    "set -e\n" SCRIPT_CA SCRIPT_LEAF
    "ca ca semantic-test-ca\n"
    "ca other-ca semantic-test-other-ca\n"
    "leaf server ca localhost DNS:localhost,IP:127.0.0.1 serverAuth\n"
    "leaf client ca semantic-test-client email:client@semantic.invalid clientAuth\n"
    "leaf wrong-name ca elsewhere.invalid DNS:elsewhere.invalid serverAuth\n"
    "leaf other-server other-ca localhost DNS:localhost,IP:127.0.0.1 serverAuth\n"
    "cat client.pem client.key > client-both.pem\n"
    "openssl pkey -in client.key -aes256 -passout pass:semantic -out client-locked.key\n"
    "echo 'no certificate here' > junk.pem\n";

int tls_files_openssl_available(void)
{
    return system("command -v openssl >/dev/null 2>&1") == 0;
}

/* The last bytes of path into why[cap] (the reason a command failed). */
static void tail_of(const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[600];
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, n > (long)sizeof buf - 1 ? n - (long)sizeof buf + 1 : 0, SEEK_SET);
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    buf[got] = '\0';
    fclose(f);
    size_t used = strlen(why);
    if (used < cap)
        snprintf(why + used, cap - used, ": %s", buf);
}

tls_files *tls_files_make(char *why, size_t cap)
{
    if (!tls_files_openssl_available()) {
        snprintf(why, cap, "%s", TLS_FILES_INSTALL_HINT);
        return NULL;
    }
    tls_files *t = calloc(1, sizeof *t);
    const char *base = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/semtls-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(t->dir)) {
        snprintf(why, cap, "mkdtemp %s: %s", t->dir, strerror(errno));
        free(t);
        return NULL;
    }
    char script[600], log[600], cmd[1400];
    snprintf(script, sizeof script, "%s/make.sh", t->dir);
    snprintf(log, sizeof log, "%s/openssl.log", t->dir);
    FILE *f = fopen(script, "w");
    if (!f || fputs(SCRIPT, f) < 0) {
        snprintf(why, cap, "write %s: %s", script, strerror(errno));
        if (f)
            fclose(f);
        tls_files_remove(t);
        return NULL;
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "cd '%s' && sh ./make.sh >'%s' 2>&1", t->dir, log);
    if (system(cmd) != 0) {
        snprintf(why, cap, "the openssl commands of %s failed", script);
        tail_of(log, why, cap);
        tls_files_remove(t);
        return NULL;
    }
    return t;
}

const char *tls_files_dir(const tls_files *t) { return t->dir; }

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void tls_files_remove(tls_files *t)
{
    if (!t)
        return;
    nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
}
