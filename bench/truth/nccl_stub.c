/* The 11 NCCL 2.30 entry points that torch 2.14's libtorch_cuda.so links against and the lent image's NCCL 2.28.9
 * lacks (found with `nm -D --undefined-only` against the image's libnccl.so.2). Python loads extensions with
 * RTLD_NOW, so one unresolved symbol stops `import torch`. Preloaded (LD_PRELOAD) beside the image's NCCL, these
 * stubs let torch 2.14 import; each returns ncclInvalidUsage (5) if ever called. One-GPU runs (TP=1) never call
 * them: NCCL communicators are only made for groups of more than one rank. Multi-GPU runs need the real NCCL
 * 2.30.7 (nvidia-nccl-cu13==2.30.7) instead.
 * build: cc -shared -fPIC -O2 -o libnccl_stub.so nccl_stub.c */
#define STUB(name) int name(void) { return 5; }
STUB(ncclCommGetUniqueId)
STUB(ncclCommGrow)
STUB(ncclCommMemStats)
STUB(ncclCommResume)
STUB(ncclCommSuspend)
STUB(ncclGetLsaMultimemDevicePointer)
STUB(ncclGetPeerDevicePointer)
STUB(ncclPutSignal)
STUB(ncclSignal)
STUB(ncclWaitSignal)
STUB(ncclWinGetUserPtr)
