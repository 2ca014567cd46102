/* fuzz_champsim.c — libFuzzer target: the champsim trace reader on arbitrary bytes (fuzz_trace.h).
 */
#include "fuzz_trace.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    return fuzz_trace_one(data, size, VMS_TRACE_CHAMPSIM);
}
