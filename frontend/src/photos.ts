// What the web app says of photos.

/** "Title, photo 2 of 5": what a screen reader says for each image. */
export function altText(title: string, index: number, count: number): string {
  return `${title}, photo ${index + 1} of ${count}`;
}
