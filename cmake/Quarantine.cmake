# quarantine_add_components(TARGET HEADERS h1 [h2 ...] [INCLUDE_DIRS d1 ...])
#
# Runs `quarantine gen` on the annotated headers (again only when they, a file
# they include, or the generator change), compiles the stubs into TARGET and links TARGET so that
# calls to the entry functions from other objects go through the stubs
# (one --wrap per entry, read from the flags file the generator writes).
function(quarantine_add_components target)
  cmake_parse_arguments(Q "" "" "HEADERS;INCLUDE_DIRS" ${ARGN})
  if(NOT Q_HEADERS)
    message(FATAL_ERROR "quarantine_add_components(${target}): HEADERS is required")
  endif()
  if(TARGET quarantine-cli)
    set(gen $<TARGET_FILE:quarantine-cli>)
    set(gen_dep quarantine-cli)
  else()
    find_program(QUARANTINE_GEN quarantine REQUIRED)
    set(gen ${QUARANTINE_GEN})
    set(gen_dep ${QUARANTINE_GEN})
  endif()
  set(stubs ${CMAKE_CURRENT_BINARY_DIR}/${target}_qtn_stubs.c)
  set(flags ${CMAKE_CURRENT_BINARY_DIR}/${target}_qtn_stubs.flags)
  set(abs_headers)
  foreach(h ${Q_HEADERS})
    get_filename_component(a ${h} ABSOLUTE)
    list(APPEND abs_headers ${a})
  endforeach()
  set(incs)
  foreach(d ${Q_INCLUDE_DIRS})
    get_filename_component(a ${d} ABSOLUTE)
    list(APPEND incs -I ${a})
  endforeach()
  set(deps ${CMAKE_CURRENT_BINARY_DIR}/${target}_qtn_stubs.d)
  add_custom_command(
    OUTPUT ${stubs} ${flags}
    COMMAND ${gen} gen -o ${stubs} --flags ${flags} --depfile ${deps} ${incs} ${abs_headers}
    DEPENDS ${abs_headers} ${gen_dep}
    DEPFILE ${deps}
    COMMENT "quarantine gen: stubs for ${target}"
    VERBATIM)
  target_sources(${target} PRIVATE ${stubs})
  target_link_libraries(${target} PRIVATE quarantine)
  # the flags file is a response file of -Wl,--wrap= options
  target_link_options(${target} PRIVATE "@${flags}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${flags})
endfunction()
