// oxchain explorer
