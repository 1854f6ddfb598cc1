/* test_redis_url.c - redis:// and unix:// URLs: every accepted form and each refusal. */
#include <criterion/criterion.h>
#include <string.h>

#include "redis_url.h"

static redis_target parse_ok(const char *url)
{
    redis_target t;
    char err[256] = "";
    int rc = redis_url_parse(url, &t, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s: %s", url, err);
    return t;
}

static void parse_fails(const char *url, const char *expected_err)
{
    redis_target t;
    char err[256] = "";
    cr_assert_eq(redis_url_parse(url, &t, err, sizeof(err)), -1, "%s was accepted", url);
    cr_assert_str_eq(err, expected_err, "%s", url);
}

/* Asserts that 'url' parses to exactly 'want': every field, defaults included. */
static void expect_target(const char *url, redis_target want)
{
    redis_target t = parse_ok(url);
    cr_assert_str_eq(t.host, want.host, "%s: host", url);
    cr_assert_eq(t.port, want.port, "%s: port", url);
    cr_assert_str_eq(t.unix_path, want.unix_path, "%s: unix_path", url);
    cr_assert_eq(t.db, want.db, "%s: db", url);
    cr_assert_str_eq(t.user, want.user, "%s: user", url);
    cr_assert_str_eq(t.password, want.password, "%s: password", url);
}

Test(redis_url, host_alone_takes_the_defaults)
{
    expect_target("redis://cache.example.it",
                  (redis_target){.host = "cache.example.it", .port = 6379});
}

Test(redis_url, host_and_port)
{
    expect_target("redis://127.0.0.1:6380", (redis_target){.host = "127.0.0.1", .port = 6380});
}

Test(redis_url, db_in_the_path)
{
    expect_target("redis://127.0.0.1:6380/3",
                  (redis_target){.host = "127.0.0.1", .port = 6380, .db = 3});
}

Test(redis_url, trailing_slash_is_db_0)
{
    expect_target("redis://localhost/", (redis_target){.host = "localhost", .port = 6379});
}

Test(redis_url, password_without_user)
{
    expect_target("redis://:s3cret@localhost",
                  (redis_target){.host = "localhost", .port = 6379, .password = "s3cret"});
}

Test(redis_url, user_password_port_and_db)
{
    expect_target(
        "redis://ingest:pa55@10.0.0.7:7000/2",
        (redis_target){
            .host = "10.0.0.7", .port = 7000, .db = 2, .user = "ingest", .password = "pa55"});
}

Test(redis_url, userinfo_without_colon_is_the_password)
{
    expect_target("redis://only-a-password@localhost",
                  (redis_target){.host = "localhost", .port = 6379, .password = "only-a-password"});
}

Test(redis_url, password_is_percent_decoded)
{
    expect_target(
        "redis://u%40x:p%3Aw%2Fd%40%25@localhost:6390",
        (redis_target){.host = "localhost", .port = 6390, .user = "u@x", .password = "p:w/d@%"});
}

Test(redis_url, raw_at_sign_in_the_password_is_kept)
{
    expect_target("redis://:p@ss@localhost",
                  (redis_target){.host = "localhost", .port = 6379, .password = "p@ss"});
}

Test(redis_url, scheme_is_case_insensitive)
{
    expect_target("REDIS://localhost:1", (redis_target){.host = "localhost", .port = 1});
}

Test(redis_url, ipv6_in_brackets)
{
    expect_target("redis://[::1]:6379", (redis_target){.host = "::1", .port = 6379});
    expect_target("redis://:pw@[2001:db8::5]/4",
                  (redis_target){.host = "2001:db8::5", .port = 6379, .db = 4, .password = "pw"});
}

Test(redis_url, unix_socket)
{
    expect_target("unix:///path/to/sock",
                  (redis_target){.unix_path = "/path/to/sock", .port = 6379});
}

Test(redis_url, unix_socket_with_db)
{
    expect_target("unix:///var/run/redis/redis.sock?db=2",
                  (redis_target){.unix_path = "/var/run/redis/redis.sock", .port = 6379, .db = 2});
}

Test(redis_url, unix_socket_with_credentials)
{
    expect_target("unix:///tmp/r.sock?user=ingest&password=a%26b&db=5",
                  (redis_target){.unix_path = "/tmp/r.sock",
                                 .port = 6379,
                                 .db = 5,
                                 .user = "ingest",
                                 .password = "a&b"});
}

Test(redis_url, unsupported_scheme)
{
    parse_fails("http://localhost:6379", "unsupported scheme 'http' (use redis:// or unix://)");
    parse_fails("rediss://localhost", "unsupported scheme 'rediss' (use redis:// or unix://)");
}

Test(redis_url, not_a_url)
{
    parse_fails("localhost:6379",
                "'localhost:6379' is not a URL (use redis://host:port or unix:///path)");
    parse_fails("", "'' is not a URL (use redis://host:port or unix:///path)");
}

Test(redis_url, port_out_of_range)
{
    parse_fails("redis://localhost:70000", "port 70000 out of range (1-65535)");
    parse_fails("redis://localhost:0", "port 0 out of range (1-65535)");
    parse_fails("redis://localhost:99999999999999999999", "port 99999999999999999999 out of "
                                                          "range (1-65535)");
}

Test(redis_url, port_not_a_number)
{
    parse_fails("redis://localhost:abc", "port 'abc' is not a number");
    parse_fails("redis://localhost:-1", "port '-1' is not a number");
    parse_fails("redis://localhost:", "missing port after ':'");
    parse_fails("redis://[::1]:x/1", "port 'x' is not a number");
}

Test(redis_url, db_not_a_number)
{
    parse_fails("redis://localhost:6379/x", "db 'x' is not a number");
    parse_fails("redis://localhost/1/2", "db '1/2' is not a number");
    parse_fails("unix:///tmp/r.sock?db=x", "db 'x' is not a number");
    parse_fails("unix:///tmp/r.sock?db=", "db is empty");
    parse_fails("redis://localhost/99999999999", "db 99999999999 out of range (0-2147483647)");
}

Test(redis_url, missing_host)
{
    parse_fails("redis://", "missing host");
    parse_fails("redis://:pw@", "missing host");
    parse_fails("redis://:6379/0", "missing host");
    parse_fails("redis://[]:6379", "missing host");
}

Test(redis_url, broken_ipv6)
{
    parse_fails("redis://[::1:6379", "IPv6 address lacks its closing ']'");
    parse_fails("redis://[::1]6379", "unexpected '6379' after the IPv6 address");
}

Test(redis_url, query_in_redis_url)
{
    parse_fails("redis://localhost?db=2",
                "redis:// URLs take no query or fragment (put the db in the path, "
                "percent-encode '?' and '#' in a password)");
}

Test(redis_url, bad_unix_urls)
{
    parse_fails("unix://relative/sock",
                "unix:// URLs need an absolute socket path (unix:///path/to/sock)");
    parse_fails("unix:///", "missing socket path");
    parse_fails("unix:///tmp/r.sock?timeout=3", "unknown parameter 'timeout' (use db, user or "
                                                "password)");
    char url[200] = "unix:///";
    memset(url + 8, 'a', 150);
    url[158] = '\0';
    parse_fails(url, "socket path too long (at most 107 bytes)");
}

Test(redis_url, bad_percent_encoding)
{
    parse_fails("redis://:a%zz@localhost", "bad percent-encoding in the password");
    parse_fails("redis://:a%4@localhost", "bad percent-encoding in the password");
    parse_fails("redis://:a%00b@localhost", "bad percent-encoding in the password");
    parse_fails("redis://u%g1:pw@localhost", "bad percent-encoding in the user");
}

Test(redis_url, too_long_parts)
{
    char url[700];
    strcpy(url, "redis://:");
    memset(url + 9, 'p', 300);
    strcpy(url + 309, "@localhost");
    parse_fails(url, "password too long (at most 255 bytes)");

    strcpy(url, "redis://");
    memset(url + 8, 'h', 300);
    url[308] = '\0';
    parse_fails(url, "host too long (at most 255 bytes)");
}

Test(redis_url, failure_leaves_a_zeroed_target)
{
    redis_target t;
    memset(&t, 0x5a, sizeof(t));
    char err[64];
    cr_assert_eq(redis_url_parse("redis://h:1/x", &t, err, sizeof(err)), -1);
    cr_assert_str_eq(t.host, "");
    cr_assert_eq(t.port, 0);
}

Test(redis_url, null_err_buffer_is_allowed)
{
    redis_target t;
    cr_assert_eq(redis_url_parse("ftp://x", &t, NULL, 0), -1);
}
