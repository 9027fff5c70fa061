/* Per-instance state: parameter handles, the server connection and its sessions, shared-memory
 * buffers, and error reporting through the host's message suite. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"
#include "server_link.h"

instance *instance_get(OfxImageEffectHandle effect) {
    OfxPropertySetHandle props;
    void *p = NULL;
    if (!effect || g_effect->getPropertySet(effect, &props) != kOfxStatOK) return NULL;
    if (g_prop->propGetPointer(props, kOfxPropInstanceData, 0, &p) != kOfxStatOK) return NULL;
    return (instance *)p;
}

OfxStatus instance_create(OfxImageEffectHandle effect) {
    instance *in = (instance *)calloc(1, sizeof *in);
    if (!in) return kOfxStatErrMemory;
    in->effect = effect;
    in->lock = vd_mutex_new();
    vd_conn_init(&in->conn);
    in->conn.process_timeout_ms = vd_env_int("VDIFF_OFX_TIMEOUT", 300) * 1000;
    in->in_shm.handle = in->out_shm.handle = -1;
    OfxParamSetHandle set;
    OfxPropertySetHandle props;
    if (!in->lock || g_effect->getParamSet(effect, &set) != kOfxStatOK ||
        g_effect->getPropertySet(effect, &props) != kOfxStatOK ||
        g_effect->clipGetHandle(effect, kOfxImageEffectSimpleSourceClipName, &in->src, NULL) != kOfxStatOK ||
        g_effect->clipGetHandle(effect, kOfxImageEffectOutputClipName, &in->dst, NULL) != kOfxStatOK ||
        g_param->paramGetHandle(set, P_MODEL, &in->p_model, NULL) != kOfxStatOK ||
        g_param->paramGetHandle(set, P_PREVIEW, &in->p_preview, NULL) != kOfxStatOK ||
        g_param->paramGetHandle(set, P_DEFAULT_STRENGTH, &in->p_default_strength, NULL) != kOfxStatOK ||
        g_param->paramGetHandle(set, P_STRENGTH, &in->p_strength, NULL) != kOfxStatOK ||
        g_param->paramGetHandle(set, P_TILE, &in->p_tile, NULL) != kOfxStatOK ||
        g_param->paramGetHandle(set, P_MIX, &in->p_mix, NULL) != kOfxStatOK) {
        vd_mutex_free(in->lock);
        free(in);
        return kOfxStatFailed;
    }
    g_prop->propSetPointer(props, kOfxPropInstanceData, 0, in);
    catalogue_load(); /* a host that loads a saved project may skip describe in this process */
    return kOfxStatOK;
}

void instance_drop_connection(instance *in) {
    vd_conn_close(&in->conn); /* the server frees the sessions and mappings with the connection */
    in->nslots = 0;
    in->nlive = 0;
    in->cached[0] = 0;
}

OfxStatus instance_destroy(OfxImageEffectHandle effect) {
    instance *in = instance_get(effect);
    if (!in) return kOfxStatOK;
    OfxPropertySetHandle props;
    if (g_effect->getPropertySet(effect, &props) == kOfxStatOK) g_prop->propSetPointer(props, kOfxPropInstanceData, 0, NULL);
    instance_drop_connection(in);
    vd_shm_release(&in->in_shm);
    vd_shm_release(&in->out_shm);
    vd_mutex_free(in->lock);
    free(in);
    return kOfxStatOK;
}

const vd_model *model_info(instance *in, const char *name) {
    for (int i = 0; i < in->nlive; i++)
        if (strcmp(in->live[i].name, name) == 0) return &in->live[i];
    for (int i = 0; i < g_cat.count; i++)
        if (strcmp(g_cat.models[i].name, name) == 0) return &g_cat.models[i];
    return NULL;
}

static int get_choice(OfxParamHandle h, OfxTime t, int fallback) {
    int v = fallback;
    if (!h || g_param->paramGetValueAtTime(h, t, &v) != kOfxStatOK) return fallback;
    return v;
}

void choose_model(instance *in, OfxTime t, int preview, vd_choice *out) {
    memset(out, 0, sizeof *out);
    int idx = get_choice(in->p_model, t, 0);
    if (idx < 0 || idx >= g_cat.count) idx = 0;
    const vd_model *main = model_info(in, g_cat.models[idx].name);
    out->model = main;
    if (preview) {
        int p = get_choice(in->p_preview, t, PREVIEW_SAME);
        if (p == PREVIEW_SOURCE) {
            out->bypass = 1;
        } else if (p >= PREVIEW_FIRST_MODEL && p - PREVIEW_FIRST_MODEL < g_cat.count) {
            const vd_model *alt = model_info(in, g_cat.models[p - PREVIEW_FIRST_MODEL].name);
            if (alt->scale == main->scale) out->model = alt; /* the RoD was declared with Model's scale */
        }
    }
    int use_default = 1;
    double s = 0.5, mix = 1.0;
    int tile = 0;
    if (in->p_default_strength) g_param->paramGetValueAtTime(in->p_default_strength, t, &use_default);
    if (in->p_strength) g_param->paramGetValueAtTime(in->p_strength, t, &s);
    if (in->p_tile) g_param->paramGetValueAtTime(in->p_tile, t, &tile);
    if (in->p_mix) g_param->paramGetValueAtTime(in->p_mix, t, &mix);
    const vd_model *m = out->model;
    if (m->has_strength && !use_default) {
        s = s < 0 ? 0 : s > 1 ? 1 : s;
        out->strength = (float)(m->strength_min + s * (m->strength_max - m->strength_min));
    } else {
        out->strength = NAN;
    }
    out->tile = tile > 0 ? (uint32_t)tile : 0;
    out->mix = mix < 0 ? 0 : mix > 1 ? 1 : mix;
}

static int same_strength(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

int instance_session(instance *in, const vd_choice *ch, vd_session_slot **slot, vd_err *err) {
    if (!vd_conn_alive(&in->conn)) {
        in->nslots = 0;
        in->nlive = 0;
        if (vd_link_connect(&in->conn, VDIFF_CLIENT_NAME, err)) return -1;
        int n = 0;
        if (vd_list_models(&in->conn, in->live, VD_MAX_MODELS, &n, err) == 0) in->nlive = n;
    }
    /* the catalogue may come from the install record or the fallback: the live server knows better */
    const vd_model *m = model_info(in, ch->model->name);
    float strength = ch->strength;
    if (m && !m->has_strength) strength = NAN;
    for (int i = 0; i < in->nslots; i++) {
        vd_session_slot *s = &in->slots[i];
        if (strcmp(s->model, ch->model->name) == 0 && same_strength(s->strength, strength) && s->tile == ch->tile) {
            *slot = s;
            return 0;
        }
    }
    if (in->nslots == MAX_SLOTS) { /* evict the oldest; the server keeps the model warm in its cache */
        vd_err ignored;
        vd_close_session(&in->conn, in->slots[0].id, &ignored);
        memmove(&in->slots[0], &in->slots[1], sizeof in->slots[0] * (MAX_SLOTS - 1));
        in->nslots--;
    }
    vd_session_slot s;
    memset(&s, 0, sizeof s);
    snprintf(s.model, sizeof s.model, "%s", ch->model->name);
    s.strength = strength;
    s.tile = ch->tile;
    char provider[128];
    if (vd_open_session(&in->conn, s.model, strength, s.tile, &s.id, &s.scale, &s.window, provider, sizeof provider,
                        err))
        return -1;
    in->slots[in->nslots] = s;
    *slot = &in->slots[in->nslots++];
    return 0;
}

void report_error(instance *in, const char *fmt, ...) {
    char text[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "vdiff-ofx: %s\n", text);
    /* persistent messages sit on the node (Nuke, Resolve) instead of a modal dialog per frame */
    if (g_msg2 && g_msg2->setPersistentMessage) {
        g_msg2->setPersistentMessage(in->effect, kOfxMessageError, "vdiff.error", "%s", text);
        in->showing_message = 1;
        return;
    }
    int64_t now = vd_now_ms();
    if (strncmp(text, in->last_message, sizeof in->last_message - 1) == 0 && now - in->last_message_ms < 10000) return;
    snprintf(in->last_message, sizeof in->last_message, "%s", text);
    in->last_message_ms = now;
    if (g_msg2 && g_msg2->message)
        g_msg2->message(in->effect, kOfxMessageError, "vdiff.error", "%s", text);
    else if (g_msg1 && g_msg1->message)
        g_msg1->message(in->effect, kOfxMessageError, "vdiff.error", "%s", text);
}

void clear_error(instance *in) {
    in->last_message[0] = 0;
    if (in->showing_message && g_msg2 && g_msg2->clearPersistentMessage) g_msg2->clearPersistentMessage(in->effect);
    in->showing_message = 0;
}
