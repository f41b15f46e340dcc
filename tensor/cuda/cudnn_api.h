// The cuDNN functions ember calls, as a table of pointers filled by dlsym (cudnn_library.cpp).
// Include only where EMBER_HAVE_CUDNN_API is defined by this header (a CUDA build that found
// cudnn.h); use through cudnn_api(), after cudnn_library().loaded.
#pragma once
#if defined(EMBER_WITH_CUDA) && __has_include(<cudnn.h>)
#define EMBER_HAVE_CUDNN_API 1
#include <cudnn.h>

namespace ember::cuda {

// X(name) for every function in the table; adding a call to the library is one line here.
#define EMBER_CUDNN_FUNCTIONS(X)                   \
  X(cudnnGetVersion)                               \
  X(cudnnGetErrorString)                           \
  X(cudnnCreate)                                   \
  X(cudnnSetStream)                                \
  X(cudnnCreateTensorDescriptor)                   \
  X(cudnnSetTensor4dDescriptor)                    \
  X(cudnnCreateFilterDescriptor)                   \
  X(cudnnSetFilter4dDescriptor)                    \
  X(cudnnCreateConvolutionDescriptor)              \
  X(cudnnSetConvolution2dDescriptor)               \
  X(cudnnSetConvolutionGroupCount)                 \
  X(cudnnSetConvolutionMathType)                   \
  X(cudnnGetConvolutionForwardAlgorithm_v7)        \
  X(cudnnGetConvolutionBackwardDataAlgorithm_v7)   \
  X(cudnnGetConvolutionBackwardFilterAlgorithm_v7) \
  X(cudnnGetConvolutionForwardWorkspaceSize)       \
  X(cudnnGetConvolutionBackwardDataWorkspaceSize)  \
  X(cudnnGetConvolutionBackwardFilterWorkspaceSize) \
  X(cudnnConvolutionForward)                       \
  X(cudnnConvolutionBackwardData)                  \
  X(cudnnConvolutionBackwardFilter)                \
  X(cudnnAddTensor)

struct CudnnApi {
#define EMBER_CUDNN_MEMBER(name) decltype(&::name) name = nullptr;
  EMBER_CUDNN_FUNCTIONS(EMBER_CUDNN_MEMBER)
#undef EMBER_CUDNN_MEMBER
};

// The table; throws an Error saying why when cuDNN could not be loaded.
const CudnnApi& cudnn_api();

}  // namespace ember::cuda
#endif
