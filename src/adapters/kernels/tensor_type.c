/*
 * tensor_type.c - the table of GGUF tensor types.
 */
#include "tensor_type.h"

typedef struct type_info {
    const char *name;
    uint32_t block_size;
    uint32_t block_bytes;
    int supported;
} type_info;

static const type_info types[TENSOR_TYPE_MAX] = {
    [TENSOR_F32] = {"F32", 1, 4, 1},
    [TENSOR_F16] = {"F16", 1, 2, 1},
    [TENSOR_Q4_0] = {"Q4_0", 32, 18, 1},
    [TENSOR_Q4_1] = {"Q4_1", 32, 20, 0},
    [TENSOR_Q5_0] = {"Q5_0", 32, 22, 0},
    [TENSOR_Q5_1] = {"Q5_1", 32, 24, 0},
    [TENSOR_Q8_0] = {"Q8_0", 32, 34, 1},
    [TENSOR_Q8_1] = {"Q8_1", 32, 36, 0},
    [TENSOR_Q2_K] = {"Q2_K", 256, 84, 0},
    [TENSOR_Q3_K] = {"Q3_K", 256, 110, 0},
    [TENSOR_Q4_K] = {"Q4_K", 256, 144, 1},
    [TENSOR_Q5_K] = {"Q5_K", 256, 176, 1},
    [TENSOR_Q6_K] = {"Q6_K", 256, 210, 1},
    [TENSOR_Q8_K] = {"Q8_K", 256, 292, 0},
    [TENSOR_IQ2_XXS] = {"IQ2_XXS", 256, 66, 0},
    [TENSOR_IQ2_XS] = {"IQ2_XS", 256, 74, 0},
    [TENSOR_IQ3_XXS] = {"IQ3_XXS", 256, 98, 0},
    [TENSOR_IQ1_S] = {"IQ1_S", 256, 50, 0},
    [TENSOR_IQ4_NL] = {"IQ4_NL", 32, 18, 0},
    [TENSOR_IQ3_S] = {"IQ3_S", 256, 110, 0},
    [TENSOR_IQ2_S] = {"IQ2_S", 256, 82, 0},
    [TENSOR_IQ4_XS] = {"IQ4_XS", 256, 136, 0},
    [TENSOR_I8] = {"I8", 1, 1, 0},
    [TENSOR_I16] = {"I16", 1, 2, 0},
    [TENSOR_I32] = {"I32", 1, 4, 0},
    [TENSOR_I64] = {"I64", 1, 8, 0},
    [TENSOR_F64] = {"F64", 1, 8, 0},
    [TENSOR_IQ1_M] = {"IQ1_M", 256, 56, 0},
    [TENSOR_BF16] = {"BF16", 1, 2, 1},
    [TENSOR_TQ1_0] = {"TQ1_0", 256, 54, 0},
    [TENSOR_TQ2_0] = {"TQ2_0", 256, 66, 0},
    [TENSOR_MXFP4] = {"MXFP4", 32, 17, 0},
};

static const type_info *info(uint32_t id)
{
    if (id >= TENSOR_TYPE_MAX || !types[id].name)
        return NULL;
    return &types[id];
}

const char *tensor_type_name(uint32_t id)
{
    const type_info *t = info(id);
    return t ? t->name : NULL;
}

int tensor_type_supported(uint32_t id)
{
    const type_info *t = info(id);
    return t && t->supported;
}

uint32_t tensor_type_block_size(uint32_t id)
{
    const type_info *t = info(id);
    return t ? t->block_size : 0;
}

uint32_t tensor_type_block_bytes(uint32_t id)
{
    const type_info *t = info(id);
    return t ? t->block_bytes : 0;
}

size_t tensor_type_row_bytes(uint32_t id, uint64_t n)
{
    const type_info *t = info(id);
    if (!t || n % t->block_size)
        return 0;
    return (size_t)(n / t->block_size) * t->block_bytes;
}
