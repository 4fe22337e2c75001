/*
 * fuzz_gguf.c - libFuzzer target: any bytes given to the GGUF reader, the
 * model binder and the tokenizer loader fail cleanly or load.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "adapters/gguf/gguf.h"
#include "adapters/text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sem_err err = {0};
    gguf_file *f = gguf_open_memory(data, size, "fuzz", &err);
    if (!f)
        return 0;
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING) {
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 100 ? kv->key.len : 100),
                     kv->key.ptr);
            gguf_str *s;
            uint64_t n;
            if (gguf_get_str_array(f, key, &s, &n, NULL) == SEM_OK)
                free(s);
        }
    }
    tokenizer *tk = tokenizer_load(f, &err);
    if (tk) {
        int32_t *ids;
        size_t n;
        if (tokenizer_encode(tk, "Hello <s> wörld 123", 20, 1, 1, &ids, &n, &err) == SEM_OK)
            free(ids);
        tokenizer_free(tk);
    }
    gguf_close(f);
    return 0;
}
