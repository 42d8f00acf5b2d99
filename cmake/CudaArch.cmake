# longdep_cuda_arch_flags(<out-var> <nvcc-version>)
# nvcc -gencode flags for the LongDep kernels: sm_90 SASS and compute_90 PTX (so newer GPUs can JIT);
# nvcc 12 and later also emit sm_90a SASS. native/build-kernels.sh makes the same choice.
function(longdep_cuda_arch_flags out_var nvcc_version)
  set(flags -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90)
  if(NOT nvcc_version VERSION_LESS 12.0)
    list(APPEND flags -gencode arch=compute_90a,code=sm_90a)
  endif()
  set(${out_var} ${flags} PARENT_SCOPE)
endfunction()

# longdep_nvcc_version(<out-var> <nvcc-path>): "major.minor" from `nvcc --version`.
function(longdep_nvcc_version out_var nvcc)
  execute_process(COMMAND ${nvcc} --version OUTPUT_VARIABLE text RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "'${nvcc} --version' failed (exit ${rc}); set NVCC or CUDA_HOME to a working CUDA toolkit")
  endif()
  string(REGEX MATCH "release ([0-9]+)\\.([0-9]+)" _ "${text}")
  if(NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "could not read the CUDA version from '${nvcc} --version'")
  endif()
  set(${out_var} "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}" PARENT_SCOPE)
endfunction()
