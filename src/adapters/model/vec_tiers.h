/*
 * vec_tiers.h - the per-tier tables behind vec_ops_for (internal; each
 * lives in a file compiled with its instruction set flags).
 */
#ifndef SEM_VEC_TIERS_H
#define SEM_VEC_TIERS_H

#include "vec.h"

const vec_ops *vec_ops_portable(void);
const vec_ops *vec_ops_avx2(void);
const vec_ops *vec_ops_avx512(void);

#endif
