# vae-api.cmake - the functions include/vae.h declares with VAE_API, for the
# linker's export list (CMakeLists.txt) and libvae(3) (libvae-man.cmake).
# vae_api_functions(HEADER OUT): OUT gets "SECTION:NAME" per function, in the
# header's order; SECTION is its section rule's title ("/* ----- errors */"),
# "version" before the first.
function(vae_api_functions header out)
  file(READ ${header} text)
  string(REGEX MATCHALL "\n/\\* -+ [^*\n]+ \\*/|\nVAE_API [^(]*[ *]vae_[a-z0-9_]+\\(" items "${text}")
  set(section version)
  set(result "")
  foreach(item IN LISTS items)
    if(item MATCHES "^\n/\\* -+ ([^*\n]+) \\*/$")
      set(section ${CMAKE_MATCH_1})
    elseif(item MATCHES "(vae_[a-z0-9_]+)\\($")
      list(APPEND result "${section}:${CMAKE_MATCH_1}")
    endif()
  endforeach()
  set(${out} ${result} PARENT_SCOPE)
endfunction()
