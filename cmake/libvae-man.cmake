# libvae-man.cmake - writes libvae(3): cmake/libvae.3.in with the functions
# of include/vae.h, by the header's sections, in place of @VAE_FUNCTIONS@,
# so the page lists what the header declares.
# usage: cmake -DHEADER=include/vae.h -DTEMPLATE=cmake/libvae.3.in -DOUT=libvae.3 -P libvae-man.cmake
file(READ ${HEADER} header)
# the section rules ("/* ----- errors */") and the functions, in order
string(REGEX MATCHALL "\n/\\* -+ [^*\n]+ \\*/|\nVAE_API [^(]*[ *]vae_[a-z0-9_]+\\(" items "${header}")
set(VAE_FUNCTIONS "")
set(section "version")
set(names "")
foreach(item IN LISTS items ITEMS "\n/* -- end */") # the end closes the last
  if(item MATCHES "^\n/\\* -+ ([^*\n]+) \\*/$")
    if(names)
      list(JOIN names ", " joined)
      string(APPEND VAE_FUNCTIONS ".TP\n\\fB${section}\\fR\n${joined}\n")
    endif()
    set(section ${CMAKE_MATCH_1})
    set(names "")
  elseif(item MATCHES "(vae_[a-z0-9_]+)\\($")
    list(APPEND names ${CMAKE_MATCH_1})
  endif()
endforeach()
string(REGEX MATCH "#define VAE_VERSION \"([^\"]*)\"" _ "${header}")
set(VAE_VERSION ${CMAKE_MATCH_1})
configure_file(${TEMPLATE} ${OUT} @ONLY)
