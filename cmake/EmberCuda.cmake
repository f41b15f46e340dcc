# Decides EMBER_WITH_CUDA / EMBER_WITH_CUDNN from the EMBER_CUDA / EMBER_CUDNN options.
include(CheckLanguage)
set(EMBER_WITH_CUDA OFF)
set(EMBER_WITH_CUDNN OFF)
if(NOT EMBER_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS "$ENV{CUDA_HOME}/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "$ENV{CUDA_HOME}/bin/nvcc")
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # sm_90 machine code for Hopper plus compute_90 PTX that the driver JITs for other GPUs.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    # CMake 3.25 does not know that nvcc 12+ speaks C++20: tell it the flag.
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(EMBER_WITH_CUDA ON)
  elseif(EMBER_CUDA STREQUAL "ON")
    message(FATAL_ERROR "EMBER_CUDA=ON but no CUDA compiler (nvcc) was found; set CUDA_HOME or CMAKE_CUDA_COMPILER")
  endif()
endif()
message(STATUS "ember: CUDA backend ${EMBER_WITH_CUDA}")

if(EMBER_WITH_CUDA AND NOT EMBER_CUDNN STREQUAL "OFF")
  # cuDNN from the CUDA toolkit or from a pip nvidia-cudnn wheel (site-packages/nvidia/cudnn).
  execute_process(COMMAND python3 -c "import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))"
                  OUTPUT_VARIABLE _pip_cudnn OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  find_path(CUDNN_INCLUDE_DIR cudnn.h
            HINTS ${CUDAToolkit_INCLUDE_DIRS} ${_pip_cudnn}/include $ENV{CUDNN_ROOT}/include)
  find_library(CUDNN_LIBRARY cudnn
            HINTS ${CUDAToolkit_LIBRARY_DIR} ${_pip_cudnn}/lib $ENV{CUDNN_ROOT}/lib)
  if(CUDNN_INCLUDE_DIR AND CUDNN_LIBRARY)
    set(EMBER_WITH_CUDNN ON)
    # Linked only by what includes <cudnn.h> (ember_link_cudnn_if_used, cmake/EmberLibrary.cmake).
    add_library(ember_cudnn INTERFACE)
    target_compile_definitions(ember_cudnn INTERFACE EMBER_WITH_CUDNN=1)
    target_include_directories(ember_cudnn INTERFACE ${CUDNN_INCLUDE_DIR})
    target_link_libraries(ember_cudnn INTERFACE ${CUDNN_LIBRARY})
  elseif(EMBER_CUDNN STREQUAL "ON")
    message(FATAL_ERROR "EMBER_CUDNN=ON but cudnn.h / libcudnn were not found (looked in the CUDA toolkit and pip nvidia/cudnn)")
  endif()
endif()
message(STATUS "ember: cuDNN baselines ${EMBER_WITH_CUDNN}")
