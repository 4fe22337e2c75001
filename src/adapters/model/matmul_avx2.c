/* placeholder: tier not written yet */
#include "matmul_kernels.h"

const mm_kernels *mm_kernels_avx2(void)
{
    return mm_kernels_portable();
}
