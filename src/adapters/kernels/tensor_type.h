/*
 * tensor_type.h - the element types of GGUF tensors.
 *
 * Ids are GGUF's (ggml_type). Quantized types store blocks of `block_size`
 * elements in `block_bytes` bytes; a row of n elements (n a multiple of the
 * block size) takes n / block_size * block_bytes bytes.
 *
 * Supported for weights: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K.
 * Q8_K is used internally for activations of K-quant matmuls. The other
 * ids are known by name so errors can say what a file contains.
 *
 * All functions are pure and thread-safe.
 */
#ifndef SEM_TENSOR_TYPE_H
#define SEM_TENSOR_TYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum tensor_type {
    TENSOR_F32 = 0,
    TENSOR_F16 = 1,
    TENSOR_Q4_0 = 2,
    TENSOR_Q4_1 = 3,
    TENSOR_Q5_0 = 6,
    TENSOR_Q5_1 = 7,
    TENSOR_Q8_0 = 8,
    TENSOR_Q8_1 = 9,
    TENSOR_Q2_K = 10,
    TENSOR_Q3_K = 11,
    TENSOR_Q4_K = 12,
    TENSOR_Q5_K = 13,
    TENSOR_Q6_K = 14,
    TENSOR_Q8_K = 15,
    TENSOR_IQ2_XXS = 16,
    TENSOR_IQ2_XS = 17,
    TENSOR_IQ3_XXS = 18,
    TENSOR_IQ1_S = 19,
    TENSOR_IQ4_NL = 20,
    TENSOR_IQ3_S = 21,
    TENSOR_IQ2_S = 22,
    TENSOR_IQ4_XS = 23,
    TENSOR_I8 = 24,
    TENSOR_I16 = 25,
    TENSOR_I32 = 26,
    TENSOR_I64 = 27,
    TENSOR_F64 = 28,
    TENSOR_IQ1_M = 29,
    TENSOR_BF16 = 30,
    TENSOR_TQ1_0 = 34,
    TENSOR_TQ2_0 = 35,
    TENSOR_MXFP4 = 39,
    TENSOR_TYPE_MAX = 40
} tensor_type;

/* "Q4_K", "F16", ...; "type_<id>" style text for unknown ids is not returned:
 * unknown ids give NULL. */
const char *tensor_type_name(uint32_t id);

/* 1 when weights of this type can be loaded and computed with. */
int tensor_type_supported(uint32_t id);

/* Elements per block and bytes per block; 0 for unknown ids. */
uint32_t tensor_type_block_size(uint32_t id);
uint32_t tensor_type_block_bytes(uint32_t id);

/* Bytes of a row of n elements; 0 when n is not a multiple of the block
 * size or the id is unknown. */
size_t tensor_type_row_bytes(uint32_t id, uint64_t n);

#endif
