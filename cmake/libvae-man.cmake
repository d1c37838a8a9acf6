# libvae-man.cmake - writes libvae(3): cmake/libvae.3.in with the functions
# of include/vae.h (vae-api.cmake), by the header's sections, under
# FUNCTIONS, so the page lists what the header declares.
# usage: cmake -DHEADER=include/vae.h -DTEMPLATE=cmake/libvae.3.in -DOUT=libvae.3 -P libvae-man.cmake
include(${CMAKE_CURRENT_LIST_DIR}/vae-api.cmake)
vae_api_functions(${HEADER} functions)
set(VAE_FUNCTIONS "")
set(section "")
foreach(f IN LISTS functions)
  string(REGEX REPLACE ":.*" "" s "${f}")
  string(REGEX REPLACE ".*:" "" name "${f}")
  if(s STREQUAL section)
    string(APPEND VAE_FUNCTIONS ", ${name}")
  else() # a section's first function
    string(APPEND VAE_FUNCTIONS "\n.TP\n\\fB${s}\\fR\n${name}")
    set(section ${s})
  endif()
endforeach()
string(APPEND VAE_FUNCTIONS "\n")
file(READ ${HEADER} header)
string(REGEX MATCH "#define VAE_VERSION \"([^\"]*)\"" _ "${header}")
set(VAE_VERSION ${CMAKE_MATCH_1})
configure_file(${TEMPLATE} ${OUT} @ONLY)
