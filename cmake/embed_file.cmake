# Writes OUT: a C file defining NAME (the bytes of the file IN, NUL-terminated) and NAME_len (their
# count, without the NUL), so that a document kept as its own file in the tree ships inside the
# program that serves it.
file(READ ${IN} hex HEX)
file(SIZE ${IN} size)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
get_filename_component(src ${IN} NAME)
set(body "/* Generated from ${src} by cmake/embed_file.cmake; do not edit. */\n")
string(APPEND body "#include <stddef.h>\n\n")
string(APPEND body "extern const char ${NAME}[];\nextern const size_t ${NAME}_len;\n")
string(APPEND body "const char ${NAME}[] = {${hex}0x00};\n")
string(APPEND body "const size_t ${NAME}_len = ${size};\n")
file(WRITE ${OUT}.tmp "${body}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
