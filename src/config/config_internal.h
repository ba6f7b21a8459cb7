/*
 * config_internal.h: what the files of src/config/ share: the `services:`
 * section (services.c), parsed beside the rest and applied once the whole
 * file is read, so it does not matter where it stands against `probes:`
 * and `logs:`.
 */
#ifndef SITREP_CONFIG_INTERNAL_H
#define SITREP_CONFIG_INTERNAL_H

#include <yaml.h>

#include "config/config.h"

/* Read the `services:` list into cfg->services (replacing it). 0, or -1 (reported). */
int config__services_parse(struct config *cfg, const char *file, yaml_document_t *doc,
                           yaml_node_t *node, struct sbuf *errors);
/*
 * Turn each service into a default HTTP probe (with url) and an access log
 * to follow (with log), appended to cfg->probes and cfg->logs. A name a
 * `probes:` or `logs:` entry already uses is an error at the service's
 * place. 0, or -1 (reported).
 */
int config__services_apply(struct config *cfg, const char *file, struct sbuf *errors);
void config__services_release(struct config *cfg);

#endif
