# Writes OUT, the vmsim(1) man page, from the program's own --help texts: `vmsim help`
# gives the synopsis and the list of commands, and each command's `--help` its section,
# so the page never disagrees with the program. Run after vmsim is built (CMakeLists).
execute_process(COMMAND "${VMSIM}" help OUTPUT_VARIABLE top RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "manpage: ${VMSIM} help failed")
endif()
execute_process(COMMAND "${VMSIM}" --version OUTPUT_VARIABLE version
                OUTPUT_STRIP_TRAILING_WHITESPACE)

# troff-escape TEXT into VAR: backslashes, and lines starting with . or ' .
function(roff var text)
    string(REPLACE "\\" "\\e" text "${text}")
    string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
    set(${var} "${text}" PARENT_SCOPE)
endfunction()

# The commands: the lines of `vmsim help` under "commands:" that start with two spaces.
string(REGEX MATCH "commands:\n(.*)\n\n" block "${top}")
string(REGEX MATCHALL "\n  [a-z]+" cmds "\n${CMAKE_MATCH_1}")
roff(top_r "${top}")
string(CONCAT page ".TH VMSIM 1 \"\" \"${version}\" \"User Commands\"\n"
         ".SH NAME\nvmsim \\- a full-system virtual-memory simulator\n"
         ".SH DESCRIPTION\n.nf\n${top_r}\n.fi\n")
foreach(c ${cmds})
    string(STRIP "${c}" c)
    if(c STREQUAL "help")
        continue()
    endif()
    execute_process(COMMAND "${VMSIM}" ${c} --help OUTPUT_VARIABLE h RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "manpage: ${VMSIM} ${c} --help failed")
    endif()
    roff(h "${h}")
    string(TOUPPER "${c}" C)
    string(APPEND page ".SH VMSIM ${C}\n.nf\n${h}\n.fi\n")
endforeach()
string(APPEND page ".SH SEE ALSO\nThe documentation in the source tree: README.md and docs/.\n")
file(WRITE "${OUT}" "${page}")
