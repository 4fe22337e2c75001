/*
 * chat_template_builtin.c - the chat formats semantic knows by name, and the
 * recognition of a template's family from its source.
 *
 * Each built-in is a Jinja template written for this project. It renders
 * system, user and assistant turns (and tool results where the format has
 * an obvious place for them) and the generation prompt exactly as the
 * family's published template does for those messages; tool definitions and
 * tool calls are not rendered by them (chat_template_render gives them the
 * generic tool convention of chat_generic.h).
 * tests/adapters/template/test_chat_template.c checks each one against the
 * golden renderings of the real templates.
 */
#include "chat_template.h"

#include <string.h>

/* Llama 3.1 / 3.2: a system header with the knowledge and current dates. */
static const char LLAMA3[] =
    "{{- bos_token }}\n"
    "{%- if date_string is not defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}\n"
    "{%- if messages and messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] | trim %}\n"
    "    {%- set messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set system_message = '' %}\n"
    "{%- endif %}\n"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}\n"
    "{{- 'Cutting Knowledge Date: December 2023\\nToday Date: ' + date_string + '\\n\\n' }}\n"
    "{{- system_message + '<|eot_id|>' }}\n"
    "{%- for message in messages %}\n"
    "    {%- set role = 'ipython' if message['role'] == 'tool' else message['role'] %}\n"
    "    {{- '<|start_header_id|>' + role + '<|end_header_id|>\\n\\n' + message['content'] | trim + "
    "'<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n";

/* ChatML as Qwen 2.5 writes it, without Qwen's default system prompt. */
static const char CHATML[] =
    "{%- for message in messages %}\n"
    "    {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n";

/* Qwen 3: ChatML with <think> blocks on assistant turns after the last user
 * query, and an empty think block when thinking is disabled. */
static const char QWEN3[] =
    "{%- if messages and messages[0]['role'] == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- set ns = namespace(last_query_index=messages | length - 1) %}\n"
    "{%- for message in messages %}\n"
    "    {%- if message['role'] == 'user' %}{%- set ns.last_query_index = loop.index0 %}{%- endif %}\n"
    "{%- endfor %}\n"
    "{%- for message in messages %}\n"
    "    {%- if message['role'] == 'user' or (message['role'] == 'system' and not loop.first) %}\n"
    "        {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {%- set content = message['content'] %}\n"
    "        {%- set reasoning = '' %}\n"
    "        {%- if message['reasoning_content'] is string %}\n"
    "            {%- set reasoning = message['reasoning_content'] %}\n"
    "        {%- elif '</think>' in content %}\n"
    "            {%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1]"
    ".lstrip('\\n') %}\n"
    "            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}\n"
    "        {%- endif %}\n"
    "        {%- if loop.index0 > ns.last_query_index and (loop.last or reasoning) %}\n"
    "            {{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + "
    "content.lstrip('\\n') }}\n"
    "        {%- else %}\n"
    "            {{- '<|im_start|>assistant\\n' + content }}\n"
    "        {%- endif %}\n"
    "        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message['role'] == 'tool' %}\n"
    "        {%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}{{- '<|im_start|>user' }}"
    "{%- endif %}\n"
    "        {{- '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' }}\n"
    "        {%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}{{- '<|im_end|>\\n' }}"
    "{%- endif %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "    {%- if enable_thinking is defined and enable_thinking is false %}\n"
    "        {{- '<think>\\n\\n</think>\\n\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n";

/* Gemma 3: the system text opens the first user turn; the assistant is
 * "model"; contents are trimmed. */
static const char GEMMA[] =
    "{{- bos_token }}\n"
    "{%- if messages and messages[0]['role'] == 'system' %}\n"
    "    {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set first_user_prefix = '' %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] %}\n"
    "    {{- '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') + "
    "message['content'] | trim + '<end_of_turn>\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<start_of_turn>model\\n' }}\n"
    "{%- endif %}\n";

/* Mistral (Nemo): [INST] turns without spaces; the system text goes with
 * the last user message; no generation prompt of its own. */
static const char MISTRAL[] =
    "{%- if messages and messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if message['role'] == 'user' %}\n"
    "        {%- if loop.last and system_message is defined %}\n"
    "            {{- '[INST]' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}\n"
    "        {%- else %}\n"
    "            {{- '[INST]' + message['content'] + '[/INST]' }}\n"
    "        {%- endif %}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {{- message['content'] + eos_token }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n";

/* Phi-3 / Phi-3.5. */
static const char PHI3[] =
    "{%- for message in messages %}\n"
    "    {%- if message['role'] == 'system' and message['content'] %}\n"
    "        {{- '<|system|>\\n' + message['content'] + '<|end|>\\n' }}\n"
    "    {%- elif message['role'] == 'user' %}\n"
    "        {{- '<|user|>\\n' + message['content'] + '<|end|>\\n' }}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {{- '<|assistant|>\\n' + message['content'] + '<|end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|assistant|>\\n' }}\n"
    "{%- else %}\n"
    "    {{- eos_token }}\n"
    "{%- endif %}\n";

/* DeepSeek-R1 (and its distills): the system text first, earlier reasoning
 * dropped from assistant turns, an open <think> in the generation prompt. */
static const char DEEPSEEK_R1[] =
    "{%- set ns = namespace(system_prompt='') %}\n"
    "{%- for message in messages %}\n"
    "    {%- if message['role'] == 'system' %}{%- set ns.system_prompt = message['content'] %}{%- endif %}\n"
    "{%- endfor %}\n"
    "{{- bos_token + ns.system_prompt }}\n"
    "{%- for message in messages %}\n"
    "    {%- if message['role'] == 'user' %}\n"
    "        {{- '<｜User｜>' + message['content'] }}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {%- set content = message['content'] %}\n"
    "        {%- if '</think>' in content %}{%- set content = content.split('</think>')[-1] %}{%- endif %}\n"
    "        {{- '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<｜Assistant｜><think>\\n' }}\n"
    "    {%- if not enable_thinking %}{{- '</think>' }}{%- endif %}\n"
    "{%- endif %}\n";

/* SmolLM3: a metadata system block with the reasoning mode, /think and
 * /no_think flags in the system text, an empty think block per turn when
 * reasoning is off. */
static const char SMOLLM3[] =
    "{%- if enable_thinking is not defined %}{%- set enable_thinking = true %}{%- endif %}\n"
    "{%- set reasoning_mode = '/think' if enable_thinking else '/no_think' %}\n"
    "{%- set custom_instructions = '' %}\n"
    "{%- if messages and messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- if '/no_think' in system_message %}{%- set reasoning_mode = '/no_think' %}\n"
    "    {%- elif '/think' in system_message %}{%- set reasoning_mode = '/think' %}{%- endif %}\n"
    "    {%- set custom_instructions = system_message.replace('/no_think', '').replace('/think', '')"
    ".rstrip() %}\n"
    "{%- endif %}\n"
    "{%- set think_prefix = '' if reasoning_mode == '/think' else '<think>\\n\\n</think>\\n' %}\n"
    "{{- '<|im_start|>system\\n## Metadata\\n\\nKnowledge Cutoff Date: June 2025\\n' }}\n"
    "{{- 'Reasoning Mode: ' + reasoning_mode + '\\n\\n## Custom Instructions\\n\\n' }}\n"
    "{%- if custom_instructions %}\n"
    "    {{- custom_instructions + '\\n\\n' }}\n"
    "{%- elif reasoning_mode == '/think' %}\n"
    "    {{- 'You are a helpful AI assistant named SmolLM, trained by Hugging Face. Your role as an "
    "assistant involves thoroughly exploring questions through a systematic thinking process before "
    "providing the final precise and accurate solutions. This requires engaging in a comprehensive "
    "cycle of analysis, summarizing, exploration, reassessment, reflection, backtracking, and "
    "iteration to develop well-considered thinking process. Please structure your response into two "
    "main sections: Thought and Solution using the specified format: <think> Thought section </think> "
    "Solution section. In the Thought section, detail your reasoning process in steps. Each step "
    "should include detailed considerations such as analysing questions, summarizing relevant "
    "findings, brainstorming new ideas, verifying the accuracy of the current steps, refining any "
    "errors, and revisiting previous steps. In the Solution section, based on various attempts, "
    "explorations, and reflections from the Thought section, systematically present the final "
    "solution that you deem correct. The Solution section should be logical, accurate, and concise "
    "and detail necessary steps needed to reach the conclusion.\\n\\n' }}\n"
    "{%- else %}\n"
    "    {{- 'You are a helpful AI assistant named SmolLM, trained by Hugging Face.\\n\\n' }}\n"
    "{%- endif %}\n"
    "{{- '<|im_end|>\\n' }}\n"
    "{%- for message in messages %}\n"
    "    {%- set content = message['content'] if message['content'] is string else '' %}\n"
    "    {%- if message['role'] == 'user' or message['role'] == 'tool' %}\n"
    "        {{- '<|im_start|>user\\n' + content + '<|im_end|>\\n' }}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {{- '<|im_start|>assistant\\n' + think_prefix + content.lstrip('\\n') + '<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' + think_prefix }}\n"
    "{%- endif %}\n";

/* gpt-oss (harmony): a fixed system block, the system/developer message as
 * developer instructions, final-channel assistant turns. */
static const char GPT_OSS[] =
    "{%- set identity = model_identity if model_identity is defined else 'You are ChatGPT, a large "
    "language model trained by OpenAI.' %}\n"
    "{%- set effort = reasoning_effort if reasoning_effort is defined else 'medium' %}\n"
    "{{- '<|start|>system<|message|>' + identity + '\\nKnowledge cutoff: 2024-06\\n' }}\n"
    "{{- 'Current date: ' + strftime_now('%Y-%m-%d') + '\\n\\nReasoning: ' + effort + '\\n\\n' }}\n"
    "{{- '# Valid channels: analysis, commentary, final. Channel must be included for every "
    "message.<|end|>' }}\n"
    "{%- if messages and messages[0]['role'] in ['system', 'developer'] %}\n"
    "    {%- set developer_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set developer_message = '' %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "{%- if developer_message %}\n"
    "    {{- '<|start|>developer<|message|># Instructions\\n\\n' + developer_message + '\\n\\n<|end|>' }}\n"
    "{%- endif %}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if message['role'] == 'assistant' %}\n"
    "        {%- if loop.last and not add_generation_prompt %}\n"
    "            {%- if message['thinking'] is defined %}\n"
    "                {{- '<|start|>assistant<|channel|>analysis<|message|>' + message['thinking'] + "
    "'<|end|>' }}\n"
    "            {%- endif %}\n"
    "            {{- '<|start|>assistant<|channel|>final<|message|>' + message['content'] + '<|return|>' }}\n"
    "        {%- else %}\n"
    "            {{- '<|start|>assistant<|channel|>final<|message|>' + message['content'] + '<|end|>' }}\n"
    "        {%- endif %}\n"
    "    {%- elif message['role'] == 'user' %}\n"
    "        {{- '<|start|>user<|message|>' + message['content'] + '<|end|>' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start|>assistant' }}\n"
    "{%- endif %}\n";

static const struct {
    const char *name;
    const char *source;
} builtins[] = {
    {"llama3", LLAMA3},       {"chatml", CHATML},           {"qwen3", QWEN3},
    {"gemma", GEMMA},         {"mistral", MISTRAL},         {"phi3", PHI3},
    {"deepseek-r1", DEEPSEEK_R1}, {"smollm3", SMOLLM3},     {"gpt-oss", GPT_OSS},
};

#define N_BUILTINS (sizeof builtins / sizeof *builtins)

const char *chat_template_builtin(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < N_BUILTINS; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return builtins[i].source;
    return NULL;
}

const char *const *chat_template_builtin_names(void)
{
    static const char *const names[N_BUILTINS + 1] = {
        "llama3", "chatml", "qwen3", "gemma", "mistral", "phi3", "deepseek-r1", "smollm3", "gpt-oss", NULL,
    };
    return names;
}

/* Families are told apart by the special tokens their templates write.
 * Order matters: SmolLM3 and Qwen 3 also use ChatML's tokens. */
const char *chat_template_detect(const char *source)
{
    if (!source)
        return NULL;
    if (strstr(source, "<|channel|>") && strstr(source, "<|start|>"))
        return "gpt-oss";
    if (strstr(source, "<|start_header_id|>") && strstr(source, "<|eot_id|>"))
        return "llama3";
    if (strstr(source, "<｜Assistant｜>") || strstr(source, "<｜User｜>"))
        return "deepseek-r1";
    if (strstr(source, "<|im_start|>")) {
        if (strstr(source, "SmolLM") || strstr(source, "/no_think"))
            return "smollm3";
        if (strstr(source, "<think>"))
            return "qwen3";
        return "chatml";
    }
    if (strstr(source, "<start_of_turn>"))
        return "gemma";
    if (strstr(source, "[INST]"))
        return "mistral";
    if (strstr(source, "<|user|>") && strstr(source, "<|assistant|>") && strstr(source, "<|end|>"))
        return "phi3";
    return NULL;
}
