// The header's notifications menu: a button with how many of your stored
// notifications are unread, opening the list of them (GET /me/notifications,
// newest first) below it. A live notification from the WebSocket reads the
// list again: the socket's message carries no stored id to add it by.
import { useInfiniteQuery, useMutation, useQueryClient, type InfiniteData } from '@tanstack/react-query';
import { useEffect, useId, useRef, useState } from 'react';
import { Link } from 'react-router-dom';

import * as endpoints from '../api/endpoints';
import type { NotificationPage, StoredNotification } from '../api/types';
import { describe } from '../live/notify';
import { useNotifications } from '../live/useNotifications';
import { ProblemAlert } from './ProblemAlert';

type Pages = InfiniteData<NotificationPage, string | null>;

/**
 * How many of the `loaded` notifications are unread, as the badge shows it:
 * "20+" when every one loaded is unread and there are `more` (marking read
 * takes a notification and every older one, so the unread are the newest).
 */
function unreadLabel(loaded: StoredNotification[], more: boolean): string | null {
  const unread = loaded.filter((notification) => !notification.read).length;
  if (unread === 0) return null;
  return more && unread === loaded.length ? `${unread}+` : String(unread);
}

function Entry({ notification, onFollow }: { notification: StoredNotification; onFollow: () => void }) {
  const { data, read, at } = notification;
  return (
    <li className={read ? 'notification' : 'notification unread'}>
      {/* Said in words too: the unread look is not the only sign. */}
      {!read && <span className="tag">New</span>}
      <Link to={`/items/${data.item_id}`} onClick={onFollow}>
        {data.item_title ?? 'The auction'}
      </Link>
      {/* The stored data has no currency either: worded as the live toast is. */}
      <p>{describe(notification)}</p>
      <time dateTime={at}>{new Date(at).toLocaleString()}</time>
    </li>
  );
}

export function NotificationsMenu({ userId }: { userId: string }) {
  const queryClient = useQueryClient();
  const queryKey = ['notifications', userId];
  const query = useInfiniteQuery({
    queryKey,
    queryFn: ({ pageParam }) => endpoints.myNotifications(pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  // React Query reads the loaded pages again from the newest, each by the
  // cursor of the one before, so a newcomer on top hides nothing below.
  const readAgain = () => void queryClient.invalidateQueries({ queryKey });
  useNotifications(readAgain);

  const markAllRead = useMutation({
    mutationFn: (newestId: string) => endpoints.markNotificationsRead(newestId),
    onSuccess: () => {
      // Every loaded one is the newest or older: all read now. Then read the
      // list again, in case one arrived meanwhile.
      queryClient.setQueryData<Pages>(queryKey, (data) =>
        data && { ...data, pages: data.pages.map((page) => ({ ...page, items: page.items.map((item) => ({ ...item, read: true })) })) },
      );
      readAgain();
    },
  });

  const [open, setOpen] = useState(false);
  const menu = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const panelId = useId();
  const titleId = useId();

  // Open, the panel closes on Escape (focus back on its button) and on a
  // click anywhere else, as menus do.
  useEffect(() => {
    if (!open) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== 'Escape') return;
      setOpen(false);
      button.current?.focus();
    };
    const onPointer = (event: PointerEvent) => {
      if (!menu.current?.contains(event.target as Node)) setOpen(false);
    };
    document.addEventListener('keydown', onKey);
    document.addEventListener('pointerdown', onPointer);
    return () => {
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('pointerdown', onPointer);
    };
  }, [open]);

  const toggle = () => {
    // Opening reads the list again: a notice sent while the socket was
    // reconnecting reached no one.
    if (!open) readAgain();
    setOpen(!open);
  };

  const notifications = query.data?.pages.flatMap((page) => page.items) ?? [];
  const unread = unreadLabel(notifications, query.hasNextPage);
  const newest = notifications[0];
  return (
    <div className="menu" ref={menu}>
      <button
        ref={button}
        type="button"
        className="link"
        aria-expanded={open}
        aria-controls={panelId}
        aria-label={unread ? `Notifications, ${unread} unread` : 'Notifications'}
        onClick={toggle}
      >
        Notifications
        {unread && (
          <span className="badge" aria-hidden="true">
            {unread}
          </span>
        )}
      </button>
      {/* Always there for aria-controls to name; filled only while open, so
          the list's text is not in the page twice (the toasts say it too). */}
      <section id={panelId} className="menu-panel" aria-labelledby={titleId} hidden={!open}>
        {open && (
          <>
            <div className="menu-head">
              <h2 id={titleId}>Your notifications</h2>
              {unread && newest && (
                <button type="button" className="secondary" disabled={markAllRead.isPending} onClick={() => markAllRead.mutate(newest.id)}>
                  Mark all as read
                </button>
              )}
            </div>
            <ProblemAlert error={query.error ?? markAllRead.error} />
            {query.isPending ? (
              <p>Loading…</p>
            ) : notifications.length === 0 ? (
              !query.isError && <p className="hint">Nothing yet. You hear here when you are outbid, your poison raises or runs out, and an auction you bid on closes.</p>
            ) : (
              <ul className="notification-list">
                {notifications.map((notification) => (
                  <Entry key={notification.id} notification={notification} onFollow={() => setOpen(false)} />
                ))}
              </ul>
            )}
            {query.hasNextPage && (
              <button type="button" className="secondary" onClick={() => void query.fetchNextPage()} disabled={query.isFetchingNextPage}>
                Load more
              </button>
            )}
          </>
        )}
      </section>
    </div>
  );
}
