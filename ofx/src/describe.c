/* Describe and DescribeInContext: what the effect is, which images it takes, and its parameters.
 * The model choice is filled from the running server (LIST_MODELS), else from the list the installer
 * recorded in vdiff.json, else a single 'denoise' entry. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"
#include "server_link.h"

vd_catalogue g_cat;

static int from_install_record(void) {
    char path[VD_PATH_MAX];
    vd_link_config_path(path, sizeof path);
    char *text = path[0] ? vd_read_file(path, 1 << 16, NULL) : NULL;
    if (!text) return 0;
    char *items[VD_MAX_MODELS + 1];
    int n = vd_parse_string_array(text, "models", items, VD_MAX_MODELS + 1);
    free(text);
    g_cat.count = 0;
    for (int i = 0; i < n; i++) {
        /* "name|task|scale|window|has_strength|min|max|default" (written by vdiff install-ofx) */
        vd_model m;
        memset(&m, 0, sizeof m);
        char task[32] = "";
        if (sscanf(items[i], "%127[^|]|%31[^|]|%d|%d|%d|%f|%f|%f", m.name, task, &m.scale, &m.window, &m.has_strength,
                   &m.strength_min, &m.strength_max, &m.strength_default) == 8 &&
            m.scale >= 1 && m.window >= 1) {
            snprintf(m.task, sizeof m.task, "%s", task);
            g_cat.models[g_cat.count++] = m;
        }
        free(items[i]);
    }
    return g_cat.count > 0;
}

void catalogue_load(void) {
    if (g_cat.count) return; /* indices must stay stable once described */
    vd_conn c;
    vd_conn_init(&c);
    c.request_timeout_ms = 3000; /* describe runs at host start-up: never hang it */
    vd_err err;
    int n = 0;
    if (vd_link_connect_existing(&c, VDIFF_CLIENT_NAME " (describe)", &err) == 0 &&
        vd_list_models(&c, g_cat.models, VD_MAX_MODELS, &n, &err) == 0 && n > 0) {
        g_cat.count = n;
        g_cat.source = "server";
    }
    vd_conn_close(&c);
    if (g_cat.count) return;
    if (from_install_record()) {
        g_cat.source = "install";
        return;
    }
    memset(&g_cat.models[0], 0, sizeof g_cat.models[0]);
    snprintf(g_cat.models[0].name, VD_NAME_MAX, "denoise");
    snprintf(g_cat.models[0].task, sizeof g_cat.models[0].task, "denoise");
    g_cat.models[0].scale = g_cat.models[0].window = 1;
    g_cat.count = 1;
    g_cat.source = "fallback";
}

OfxStatus describe(OfxImageEffectHandle effect) {
    OfxPropertySetHandle props;
    if (g_effect->getPropertySet(effect, &props) != kOfxStatOK) return kOfxStatErrBadHandle;
    g_prop->propSetString(props, kOfxPropLabel, 0, "vdiff Enhance");
    g_prop->propSetString(props, kOfxPropShortLabel, 0, "vdiff");
    g_prop->propSetString(props, kOfxImageEffectPluginPropGrouping, 0, "vdiff");
    g_prop->propSetString(props, kOfxPropPluginDescription, 0,
                          "Denoise, de-block, sharpen and upscale with vdiff models. Frames are processed by the "
                          "vdiff frame server (started on demand), never inside the host.");
    g_prop->propSetString(props, kOfxImageEffectPropSupportedContexts, 0, kOfxImageEffectContextFilter);
    g_prop->propSetString(props, kOfxImageEffectPropSupportedContexts, 1, kOfxImageEffectContextGeneral);
    g_prop->propSetString(props, kOfxImageEffectPropSupportedPixelDepths, 0, kOfxBitDepthFloat);
    g_prop->propSetString(props, kOfxImageEffectPropSupportedPixelDepths, 1, kOfxBitDepthShort);
    g_prop->propSetString(props, kOfxImageEffectPropSupportedPixelDepths, 2, kOfxBitDepthByte);
    g_prop->propSetInt(props, kOfxImageEffectPropSupportsMultipleClipDepths, 0, 0);
    g_prop->propSetInt(props, kOfxImageEffectPropSupportsTiles, 0, 1);         /* render windows are handled */
    g_prop->propSetInt(props, kOfxImageEffectPropSupportsMultiResolution, 0, 1); /* RoD may differ (upscale) */
    g_prop->propSetInt(props, kOfxImageEffectPropTemporalClipAccess, 0, 1);    /* temporal models */
    g_prop->propSetInt(props, kOfxImageEffectPluginPropHostFrameThreading, 0, 0);
    /* one render at a time per instance: each instance owns one server connection and its buffers */
    g_prop->propSetString(props, kOfxImageEffectPluginRenderThreadSafety, 0, kOfxImageEffectRenderInstanceSafe);
    catalogue_load();
    return kOfxStatOK;
}

static OfxPropertySetHandle define_param(OfxParamSetHandle set, const char *type, const char *name, const char *label,
                                         const char *hint) {
    OfxPropertySetHandle p = NULL;
    if (g_param->paramDefine(set, type, name, &p) != kOfxStatOK || !p) return NULL;
    g_prop->propSetString(p, kOfxPropLabel, 0, label);
    g_prop->propSetString(p, kOfxParamPropHint, 0, hint);
    g_prop->propSetString(p, kOfxParamPropScriptName, 0, name);
    return p;
}

static void model_label(const vd_model *m, char *out, size_t n) {
    if (m->scale > 1)
        snprintf(out, n, "%s (%dx)", m->name, m->scale);
    else
        snprintf(out, n, "%s", m->name);
}

OfxStatus describe_in_context(OfxImageEffectHandle effect, OfxPropertySetHandle in_args) {
    (void)in_args;
    OfxPropertySetHandle clip;
    if (g_effect->clipDefine(effect, kOfxImageEffectSimpleSourceClipName, &clip) != kOfxStatOK) return kOfxStatFailed;
    g_prop->propSetString(clip, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentRGBA);
    g_prop->propSetString(clip, kOfxImageEffectPropSupportedComponents, 1, kOfxImageComponentRGB);
    g_prop->propSetInt(clip, kOfxImageEffectPropTemporalClipAccess, 0, 1);
    g_prop->propSetInt(clip, kOfxImageEffectPropSupportsTiles, 0, 1);
    if (g_effect->clipDefine(effect, kOfxImageEffectOutputClipName, &clip) != kOfxStatOK) return kOfxStatFailed;
    g_prop->propSetString(clip, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentRGBA);
    g_prop->propSetString(clip, kOfxImageEffectPropSupportedComponents, 1, kOfxImageComponentRGB);
    g_prop->propSetInt(clip, kOfxImageEffectPropSupportsTiles, 0, 1);

    OfxParamSetHandle set;
    if (g_effect->getParamSet(effect, &set) != kOfxStatOK) return kOfxStatFailed;
    catalogue_load();
    char label[VD_NAME_MAX + 16];

    OfxPropertySetHandle p = define_param(set, kOfxParamTypeChoice, P_MODEL, "Model",
                                          "vdiff model for renders (from `vdiff models`)");
    if (!p) return kOfxStatFailed;
    for (int i = 0; i < g_cat.count; i++) {
        model_label(&g_cat.models[i], label, sizeof label);
        g_prop->propSetString(p, kOfxParamPropChoiceOption, i, label);
    }
    g_prop->propSetInt(p, kOfxParamPropDefault, 0, 0);
    g_prop->propSetInt(p, kOfxParamPropAnimates, 0, 0);

    p = define_param(set, kOfxParamTypeChoice, P_PREVIEW, "Preview",
                     "what the viewer shows while scrubbing or in draft renders; final renders always use Model. "
                     "A preview model with another scale than Model is ignored.");
    if (!p) return kOfxStatFailed;
    g_prop->propSetString(p, kOfxParamPropChoiceOption, PREVIEW_SAME, "Same as Model");
    g_prop->propSetString(p, kOfxParamPropChoiceOption, PREVIEW_SOURCE, "Source (no processing)");
    for (int i = 0; i < g_cat.count; i++) {
        model_label(&g_cat.models[i], label, sizeof label);
        g_prop->propSetString(p, kOfxParamPropChoiceOption, PREVIEW_FIRST_MODEL + i, label);
    }
    g_prop->propSetInt(p, kOfxParamPropDefault, 0, PREVIEW_SAME);
    g_prop->propSetInt(p, kOfxParamPropAnimates, 0, 0);

    p = define_param(set, kOfxParamTypeBoolean, P_DEFAULT_STRENGTH, "Model's Default Strength",
                     "use the strength the model was trained for; untick to set Strength");
    if (!p) return kOfxStatFailed;
    g_prop->propSetInt(p, kOfxParamPropDefault, 0, 1);
    g_prop->propSetInt(p, kOfxParamPropAnimates, 0, 0);

    p = define_param(set, kOfxParamTypeDouble, P_STRENGTH, "Strength",
                     "0 = the model's weakest setting, 1 = its strongest (models without a strength ignore it)");
    if (!p) return kOfxStatFailed;
    g_prop->propSetDouble(p, kOfxParamPropDefault, 0, 0.5);
    g_prop->propSetDouble(p, kOfxParamPropMin, 0, 0.0);
    g_prop->propSetDouble(p, kOfxParamPropMax, 0, 1.0);
    g_prop->propSetDouble(p, kOfxParamPropDisplayMin, 0, 0.0);
    g_prop->propSetDouble(p, kOfxParamPropDisplayMax, 0, 1.0);

    p = define_param(set, kOfxParamTypeInteger, P_TILE, "Tile Size",
                     "tile edge in pixels for the model, 0 = automatic from free GPU memory; lower it if the "
                     "server reports out of memory");
    if (!p) return kOfxStatFailed;
    g_prop->propSetInt(p, kOfxParamPropDefault, 0, 0);
    g_prop->propSetInt(p, kOfxParamPropMin, 0, 0);
    g_prop->propSetInt(p, kOfxParamPropMax, 0, 16384);
    g_prop->propSetInt(p, kOfxParamPropDisplayMin, 0, 0);
    g_prop->propSetInt(p, kOfxParamPropDisplayMax, 0, 2048);
    g_prop->propSetInt(p, kOfxParamPropAnimates, 0, 0);

    p = define_param(set, kOfxParamTypeDouble, P_MIX, "Mix", "blend with the source: 0 = source, 1 = fully enhanced");
    if (!p) return kOfxStatFailed;
    g_prop->propSetDouble(p, kOfxParamPropDefault, 0, 1.0);
    g_prop->propSetDouble(p, kOfxParamPropMin, 0, 0.0);
    g_prop->propSetDouble(p, kOfxParamPropMax, 0, 1.0);
    g_prop->propSetDouble(p, kOfxParamPropDisplayMin, 0, 0.0);
    g_prop->propSetDouble(p, kOfxParamPropDisplayMax, 0, 1.0);
    return kOfxStatOK;
}
