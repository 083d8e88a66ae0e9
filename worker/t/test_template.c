
/*
 * Copyright (C) ngx_voucher authors
 *
 * cmocka tests for message templates (worker/vw_template.c).
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vw_template.h"


static void
test_check(void **state)
{
    size_t  i;
    char    err[512];

    static const struct {
        const char  *tpl;
        const char  *why;          /* NULL: fine */
    } t[] = {
        { "Hi {{name}}, {{code}} gives {{discount}} until {{expires_at}}",
          NULL },
        { "{{ name }} {{campaign}} {{id}}", NULL },
        { "{{points}} {{tier}} {{points_to_next_tier}} {{expiring_points}} "
          "{{expiry_date}} {{referral_code}}", NULL },
        { "{{point}}", "unknown field \"point\"" },
        { "no fields at all", NULL },
        { "a { single } brace", NULL },
        { "", NULL },
        { "Hi {{nmae}}", "unknown field \"nmae\" (known: name, code" },
        { "{{name}} {{first_name}}", "unknown field \"first_name\"" },
        { "Hi {{name", "\"{{\" without a field and \"}}\" at offset 3" },
        { "Hi {{}}", "at offset 3" },
        { "Hi {{ }}", "at offset 3" },
        { "{{name code}}", "at offset 0" },
    };

    (void) state;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        err[0] = '\0';

        if (t[i].why == NULL) {
            if (vw_template_check(t[i].tpl, err, sizeof(err)) != 0) {
                fail_msg("\"%s\": %s", t[i].tpl, err);
            }

            continue;
        }

        if (vw_template_check(t[i].tpl, err, sizeof(err)) != -1
            || strstr(err, t[i].why) == NULL)
        {
            fail_msg("\"%s\": \"%s\" lacks \"%s\"", t[i].tpl, err, t[i].why);
        }
    }
}


/* whether a template uses the loyalty fields: the daemon reads them then */

static void
test_uses(void **state)
{
    (void) state;

    assert_true(vw_template_uses("Hi {{ points }}", vw_template_loyalty));
    assert_true(vw_template_uses("{{name}} {{referral_code}}",
                                 vw_template_loyalty));
    assert_false(vw_template_uses("Hi {{name}}, points {{code}}",
                                  vw_template_loyalty));
    assert_false(vw_template_uses("{{pointsx}} {{tiers}}",
                                  vw_template_loyalty));
    assert_false(vw_template_uses("", vw_template_loyalty));
    assert_false(vw_template_uses(NULL, vw_template_loyalty));
    assert_false(vw_template_uses("{{points", vw_template_loyalty));
}


static void
test_render(void **state)
{
    char             *s;
    const vw_tvar_t   vars[] = {
        { "name", "Alice" },
        { "code", "SALE-7Q2M-94KD" },
        { "discount", "10%" },
        { "expires_at", NULL },
    };

    (void) state;

    s = vw_template_render("Hi {{name}}, {{ code }} gives {{discount}} off"
                           "{{expires_at}}.", vars, 4);
    assert_string_equal(s, "Hi Alice, SALE-7Q2M-94KD gives 10% off.");
    free(s);

    s = vw_template_render("{{name}}{{name}} {{campaign}}|", vars, 4);
    assert_string_equal(s, "AliceAlice |");
    free(s);

    /* values are inserted as they are, never expanded again */
    {
        const vw_tvar_t  v2[] = { { "name", "{{code}}" } };

        s = vw_template_render("{{name}} {{code}}", v2, 1);
        assert_string_equal(s, "{{code}} ");
        free(s);
    }

    s = vw_template_render("", vars, 4);
    assert_string_equal(s, "");
    free(s);

    /* an unclosed {{ is left as text */
    s = vw_template_render("a {{name", vars, 4);
    assert_string_equal(s, "a {{name");
    free(s);
}


static void
test_money(void **state)
{
    char  buf[64];

    (void) state;

    vw_money(12345, "THB", buf, sizeof(buf));
    assert_string_equal(buf, "123.45 THB");
    vw_money(5, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "0.05");
    vw_money(-100, "", buf, sizeof(buf));
    assert_string_equal(buf, "-1.00");
    vw_money(INT64_MIN, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "-92233720368547758.08");

    vw_discount_text("percent", 1000, "THB", buf, sizeof(buf));
    assert_string_equal(buf, "10%");
    vw_discount_text("percent", 1250, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "12.5%");
    vw_discount_text("percent", 1234, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "12.34%");
    vw_discount_text("amount", 10000, "THB", buf, sizeof(buf));
    assert_string_equal(buf, "100.00 THB");
    vw_discount_text("gift_card", 50000, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "500.00");
    vw_discount_text("free_item", 0, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "1 free");
    vw_discount_text(NULL, 0, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_uses),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_money),
    };

    return cmocka_run_group_tests_name("templates", tests, NULL, NULL);
}
