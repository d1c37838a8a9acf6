# libvae-man.cmake - writes libvae(3): cmake/libvae.3.in with the functions
# of the public headers (vae-api.cmake), by their sections, under FUNCTIONS,
# so the page lists what the headers declare.
# usage: cmake -DHEADERS=include/vae/core.h,... -DTEMPLATE=cmake/libvae.3.in -DOUT=libvae.3 -P libvae-man.cmake
include(${CMAKE_CURRENT_LIST_DIR}/vae-api.cmake)
string(REPLACE "," ";" HEADERS "${HEADERS}")
vae_api_functions(functions ${HEADERS})
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
list(GET HEADERS 0 core) # the version is core.h's
file(READ ${core} header)
string(REGEX MATCH "#define VAE_VERSION \"([^\"]*)\"" _ "${header}")
set(VAE_VERSION ${CMAKE_MATCH_1})
configure_file(${TEMPLATE} ${OUT} @ONLY)
