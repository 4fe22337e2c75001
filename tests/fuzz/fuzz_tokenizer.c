/*
 * fuzz_tokenizer.c - libFuzzer target: any text through the SPM and BPE
 * tokenizers of the test vocabularies, with and without special tokens,
 * and back through decode.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "adapters/gguf/gguf.h"
#include "adapters/text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tokenizer *load(const char *path)
{
    gguf_file *f = gguf_open(path, NULL);
    tokenizer *tk = f ? tokenizer_load(f, NULL) : NULL;
    gguf_close(f);
    if (!tk)
        abort();
    return tk;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Loaded once per process: fuzzing configuration, not program state. */
    static tokenizer *tks[3];
    if (!tks[0]) {
        tks[0] = load(SEM_TEST_DATA "/tokenizer/ggml-vocab-llama-spm.gguf");
        tks[1] = load(SEM_TEST_DATA "/tokenizer/ggml-vocab-gpt-2.gguf");
        tks[2] = load(SEM_TEST_DATA "/tokenizer/ggml-vocab-phi-3.gguf");
    }
    for (int t = 0; t < 3; t++) {
        for (int special = 0; special < 2; special++) {
            int32_t *ids;
            size_t n;
            if (tokenizer_encode(tks[t], (const char *)data, size, special, special, &ids, &n,
                                 NULL) != SEM_OK)
                continue;
            char *text;
            size_t len;
            if (tokenizer_decode(tks[t], ids, n, 0, special, &text, &len, NULL) == SEM_OK)
                free(text);
            free(ids);
        }
    }
    return 0;
}
