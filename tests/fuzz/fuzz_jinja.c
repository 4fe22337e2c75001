/*
 * fuzz_jinja.c - libFuzzer target: any template source through the Jinja
 * parser and, when it parses, a render against a small conversation, under
 * the renderer's limits.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "adapters/template/jinja.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jinja_template *t = jinja_parse((const char *)data, size, NULL);
    if (!t)
        return 0;
    json_t *ctx = json_pack("{s:[{s:s,s:s},{s:s,s:s}],s:b,s:s}", "messages", "role", "system",
                            "content", "be brief", "role", "user", "content", "hi",
                            "add_generation_prompt", 1, "bos_token", "<s>");
    jinja_render_opts o = {0};
    o.limits.max_output_bytes = 1 << 16;
    o.limits.max_steps = 100000;
    char *out;
    size_t len;
    if (jinja_render(t, ctx, &o, &out, &len, NULL) == SEM_OK)
        free(out);
    json_decref(ctx);
    jinja_free(t);
    return 0;
}
