/* stderr_capture.c - fd 2 caught in a temporary file and read back. */
#include "stderr_capture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static FILE *capture_file;
static int saved_stderr = -1;

void stderr_capture_start(void)
{
    capture_file = tmpfile();
    cr_assert_not_null(capture_file);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    cr_assert_geq(saved_stderr, 0);
    cr_assert_geq(dup2(fileno(capture_file), STDERR_FILENO), 0);
}

const char *stderr_capture_end(void)
{
    static char text[65536];
    fflush(stderr);
    cr_assert_geq(dup2(saved_stderr, STDERR_FILENO), 0);
    close(saved_stderr);
    saved_stderr = -1;
    cr_assert_eq(fseek(capture_file, 0, SEEK_SET), 0);
    size_t n = fread(text, 1, sizeof(text) - 1, capture_file);
    text[n] = '\0';
    fclose(capture_file);
    capture_file = NULL;
    return text;
}

int count_substr(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}
