"""Conversations: the chats the chat API stored (`manager`, list `model`,
page `view`)."""
