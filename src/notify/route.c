/*
 * route.c: the routing tree as Alertmanager evaluates it. The config keeps
 * routes as written; this builds the effective tree (receiver, group_by and
 * timers inherited from the parent where a route leaves them out), numbers
 * routes as Alertmanager does, computes the route keys that go into group
 * keys, and finds the routes an alert goes to.
 */
#include "notify/notify_internal.h"
#include "util/banned.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

static const struct notify_receiver *find_receiver(const struct notify_config *cfg,
                                                   const char *name)
{
    for (size_t i = 0; name && i < cfg->nreceivers; i++)
        if (strcmp(cfg->receivers[i].name, name) == 0)
            return &cfg->receivers[i];
    return NULL;
}

static void build(struct notify__route *r, const struct notify_route *c,
                  struct notify__route *parent, const struct notify_config *cfg, size_t *counter)
{
    r->cfg = c;
    r->parent = parent;
    if (parent) {
        r->receiver_name = parent->receiver_name;
        r->group_by = parent->group_by;
        r->ngroup_by = parent->ngroup_by;
        r->group_by_all = parent->group_by_all;
        r->group_wait_ms = parent->group_wait_ms;
        r->group_interval_ms = parent->group_interval_ms;
        r->repeat_interval_ms = parent->repeat_interval_ms;
    } else {
        /* Alertmanager's DefaultRouteOpts. */
        r->group_wait_ms = 30000;
        r->group_interval_ms = 300000;
        r->repeat_interval_ms = 4 * 3600000LL;
    }
    if (c->receiver)
        r->receiver_name = c->receiver;
    if (c->group_by_set) {
        r->group_by = c->group_by;
        r->ngroup_by = c->ngroup_by;
        r->group_by_all = c->group_by_all;
    }
    if (c->group_wait_ms != NOTIFY_UNSET)
        r->group_wait_ms = c->group_wait_ms;
    if (c->group_interval_ms != NOTIFY_UNSET)
        r->group_interval_ms = c->group_interval_ms;
    if (c->repeat_interval_ms != NOTIFY_UNSET)
        r->repeat_interval_ms = c->repeat_interval_ms;
    r->receiver = find_receiver(cfg, r->receiver_name);

    struct sbuf key;
    sbuf_init(&key, 0);
    if (parent) {
        sbuf_adds(&key, parent->key);
        sbuf_addc(&key, '/');
    }
    notify__matchers_string(&key, &c->matchers);
    r->key = notify__sbuf_take(&key);

    r->nchildren = c->nroutes;
    r->children = c->nroutes ? xcalloc(c->nroutes, sizeof(*r->children)) : NULL;
    for (size_t i = 0; i < c->nroutes; i++)
        build(&r->children[i], &c->routes[i], r, cfg, counter);
    r->idx = (*counter)++;
}

void notify__routes_build(struct notify__routes *rt, const struct notify_config *cfg)
{
    memset(rt, 0, sizeof(*rt));
    if (!cfg->has_route)
        return;
    rt->root = xcalloc(1, sizeof(*rt->root));
    build(rt->root, &cfg->route, NULL, cfg, &rt->count);
}

static void free_route(struct notify__route *r)
{
    for (size_t i = 0; i < r->nchildren; i++)
        free_route(&r->children[i]);
    free(r->children);
    free(r->key);
}

void notify__routes_free(struct notify__routes *rt)
{
    if (rt->root) {
        free_route(rt->root);
        free(rt->root);
    }
    memset(rt, 0, sizeof(*rt));
}

/* Route.Match: append this route's matches to out; returns how many it added. */
static size_t match(const struct notify__route *r, const struct notify__lset *l,
                    const struct notify__route **out, size_t cap, size_t have)
{
    if (!notify__matchers_match(&r->cfg->matchers, l))
        return 0;
    size_t added = 0;
    for (size_t i = 0; i < r->nchildren; i++) {
        size_t k = match(&r->children[i], l, out, cap, have + added);
        added += k;
        if (k && !r->children[i].cfg->cont)
            break;
    }
    if (!added) {
        if (have < cap)
            out[have] = r;
        added = 1;
    }
    return added;
}

size_t notify__routes_match(const struct notify__routes *rt, const struct notify__lset *l,
                            const struct notify__route **out, size_t cap)
{
    if (!rt->root)
        return 0;
    return match(rt->root, l, out, cap, 0);
}
