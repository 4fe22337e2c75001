/*
 * agent_id.c - validation of agent ids.
 */
#include "agent_id.h"

#include <string.h>

static int allowed(char c);

sem_status agent_key_validate(const char *key, sem_err *err)
{
    if (!key || !*key)
        return sem_err_set(err, SEM_EREQUEST, "agent key is empty");
    if (key[0] == '.')
        return sem_err_set(err, SEM_EREQUEST, "agent key starts with a dot");
    size_t n = strnlen(key, AGENT_KEY_MAX + 1);
    if (n > AGENT_KEY_MAX)
        return sem_err_set(err, SEM_EREQUEST, "agent key is longer than %d characters",
                           AGENT_KEY_MAX);
    for (size_t i = 0; i < n; i++)
        if (!allowed(key[i]) && key[i] != '.')
            return sem_err_set(err, SEM_EREQUEST,
                               "agent key has character 0x%02x at position %zu; only "
                               "[A-Za-z0-9_.-] is allowed",
                               (unsigned char)key[i], i);
    return SEM_OK;
}

static int allowed(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

sem_status agent_id_validate(const char *id, sem_err *err)
{
    if (!id || !*id)
        return sem_err_set(err, SEM_EREQUEST, "agent id is empty");
    size_t n = strnlen(id, AGENT_ID_MAX + 1);
    if (n > AGENT_ID_MAX)
        return sem_err_set(err, SEM_EREQUEST, "agent id is longer than %d characters",
                           AGENT_ID_MAX);
    for (size_t i = 0; i < n; i++)
        if (!allowed(id[i]))
            return sem_err_set(err, SEM_EREQUEST,
                               "agent id has character 0x%02x at position %zu; only "
                               "[A-Za-z0-9_-] is allowed",
                               (unsigned char)id[i], i);
    return SEM_OK;
}
