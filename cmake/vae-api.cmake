# vae-api.cmake - the functions the public headers declare with VAE_API, for
# the linker's export list (CMakeLists.txt) and libvae(3) (libvae-man.cmake).
# vae_api_functions(OUT HEADER...): OUT gets "SECTION:NAME" per function, in
# the headers' order; SECTION is its section rule's title ("/* ----- errors */"),
# "version" before the first.
function(vae_api_functions out)
  set(text "")
  foreach(header ${ARGN})
    file(READ ${header} part)
    string(APPEND text "${part}")
  endforeach()
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
