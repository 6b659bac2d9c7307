# Runs BOT with ARGS (";"-separated) and checks its exit code is WANT and its stderr matches
# EXPECT. -DBOT=... -DARGS=... -DWANT=2 -DEXPECT=regex
execute_process(COMMAND ${BOT} ${ARGS} INPUT_FILE /dev/null
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 30)
if(NOT rc STREQUAL "${WANT}")
  message(FATAL_ERROR "${BOT} ${ARGS} exited with ${rc}, not ${WANT}\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(NOT err MATCHES "${EXPECT}")
  message(FATAL_ERROR "stderr does not say '${EXPECT}':\n${err}")
endif()
