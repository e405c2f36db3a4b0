# quarantine_add_components(TARGET HEADERS h1 [h2 ...] [INCLUDE_DIRS d1 ...]
#                           [SOURCES s1 ...])
#
# Runs `quarantine gen` on the annotated headers (again only when they, a file
# they include, a source, or the generator change), compiles the stubs into
# TARGET and links TARGET so that calls to the entry functions from other
# objects go through the stubs (one --wrap per entry, read from the flags file
# the generator writes).
#
# Each component gets a code identity (qtn_component.code_id) from the C
# sources that are its code: by default the .c files TARGET (and the object
# libraries it links) have when this is called, or SOURCES when given
# (SOURCES with no file: no code identity).
# The sources are parsed as they compile: with TARGET's include directories
# and compile definitions, as the headers are.

# The depfile names files by absolute paths: let Ninja read it as CMake
# translates it (the function keeps the policies in force where it is defined).
if(POLICY CMP0116)
  cmake_policy(SET CMP0116 NEW)
endif()

function(quarantine_add_components target)
  cmake_parse_arguments(Q "" "" "HEADERS;INCLUDE_DIRS;SOURCES" ${ARGN})
  if(NOT Q_HEADERS)
    message(FATAL_ERROR "quarantine_add_components(${target}): HEADERS is required")
  endif()
  # the generator and the library: this project's own (in the source tree),
  # the installed package's (find_package(Quarantine)), or, with neither,
  # a `quarantine` on the PATH and a libquarantine the linker finds
  if(TARGET quarantine-cli)
    set(gen $<TARGET_FILE:quarantine-cli>)
    set(gen_dep quarantine-cli)
    set(lib quarantine)
  elseif(TARGET Quarantine::quarantine-cli)
    set(gen $<TARGET_FILE:Quarantine::quarantine-cli>)
    set(gen_dep Quarantine::quarantine-cli)
    set(lib Quarantine::quarantine)
  else()
    find_program(QUARANTINE_GEN quarantine REQUIRED)
    set(gen ${QUARANTINE_GEN})
    set(gen_dep ${QUARANTINE_GEN})
    set(lib quarantine)
  endif()
  set(stubs ${CMAKE_CURRENT_BINARY_DIR}/${target}_qtn_stubs.c)
  set(flags ${CMAKE_CURRENT_BINARY_DIR}/${target}_qtn_stubs.flags)
  set(stamp ${CMAKE_CURRENT_BINARY_DIR}/${target}_qtn_stubs.stamp)
  set(deps ${CMAKE_CURRENT_BINARY_DIR}/${target}_qtn_stubs.d)
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

  # the sources whose contents make the components' code identities
  set(abs_sources)
  if("SOURCES" IN_LIST Q_KEYWORDS_MISSING_VALUES)
    # SOURCES and nothing after it: no code identity
  elseif(DEFINED Q_SOURCES)
    foreach(s ${Q_SOURCES})
      get_filename_component(a ${s} ABSOLUTE)
      list(APPEND abs_sources ${a})
    endforeach()
  else()
    # the target's own, and those of the object libraries it links (their
    # objects are part of it)
    set(from ${target})
    get_target_property(libs ${target} LINK_LIBRARIES)
    foreach(l ${libs})
      if(TARGET ${l})
        get_target_property(type ${l} TYPE)
        get_target_property(imported ${l} IMPORTED)
        if(type STREQUAL "OBJECT_LIBRARY" AND NOT imported)
          list(APPEND from ${l})
        endif()
      endif()
    endforeach()
    foreach(t ${from})
      get_target_property(tsrcs ${t} SOURCES)
      get_target_property(tsrcdir ${t} SOURCE_DIR)
      get_target_property(tbindir ${t} BINARY_DIR)
      foreach(s ${tsrcs})
        if(s MATCHES "\\$<" OR NOT s MATCHES "\\.c$")
          continue() # generator expressions, headers, other languages
        endif()
        set(base ${tsrcdir})
        if(NOT IS_ABSOLUTE ${s})
          get_source_file_property(generated ${s} TARGET_DIRECTORY ${t} GENERATED)
          if(generated)
            set(base ${tbindir})
          endif()
        endif()
        get_filename_component(a ${s} ABSOLUTE BASE_DIR ${base})
        if(NOT a STREQUAL stubs)
          list(APPEND abs_sources ${a})
        endif()
      endforeach()
    endforeach()
  endif()
  list(REMOVE_DUPLICATES abs_sources)
  set(srcargs)
  foreach(s ${abs_sources})
    list(APPEND srcargs --source ${s})
  endforeach()

  # parse as the target compiles: its include directories and definitions
  # (its own, its directory's and those its libraries bring), and where
  # quarantine.h is
  set(tinc "$<TARGET_PROPERTY:${target},INCLUDE_DIRECTORIES>")
  set(tdef "$<TARGET_PROPERTY:${target},COMPILE_DEFINITIONS>")
  set(targs "$<$<BOOL:${tinc}>:-I$<JOIN:${tinc},$<SEMICOLON>-I>>"
            "$<$<BOOL:${tdef}>:-D$<JOIN:${tdef},$<SEMICOLON>-D>>")
  if(TARGET ${lib})
    set(qinc "$<TARGET_PROPERTY:${lib},INTERFACE_INCLUDE_DIRECTORIES>")
    list(APPEND targs "$<$<BOOL:${qinc}>:-I$<JOIN:${qinc},$<SEMICOLON>-I>>")
  endif()

  # The stamp is the command's output: it is touched on every run, while the
  # stubs and the flags change only when their bytes do (so nothing is
  # compiled again for a change that does not reach them).
  add_custom_command(
    OUTPUT ${stamp}
    BYPRODUCTS ${stubs} ${flags}
    COMMAND ${gen} gen -o ${stubs} --flags ${flags} --depfile ${deps} --stamp ${stamp}
            ${incs} ${targs} ${srcargs} ${abs_headers}
    DEPENDS ${abs_headers} ${abs_sources} ${gen_dep}
    DEPFILE ${deps}
    COMMENT "quarantine gen: stubs for ${target}"
    COMMAND_EXPAND_LISTS
    VERBATIM)
  target_sources(${target} PRIVATE ${stubs} ${stamp})
  target_link_libraries(${target} PRIVATE ${lib})
  # the flags file is a response file of -Wl,--wrap= options
  target_link_options(${target} PRIVATE "@${flags}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${flags})
endfunction()
