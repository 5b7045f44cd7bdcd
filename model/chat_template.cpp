// placeholder until the chat template implementation lands
#include "model/chat_template.h"
